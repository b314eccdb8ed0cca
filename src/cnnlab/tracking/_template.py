"""A new embedded store starts as a copy of an empty one, not from MLflow's migrations.

    seed_store(Path("cnnlab-runs/mlflow.db"))   # before MLflow first opens the file

MLflow creates a SQLite store by running its whole chain of schema migrations, about 1.5 s on
a 2-core machine, paid by every new runs folder (each test, each `--runs-dir`). The result
depends only on the versions of MLflow, SQLAlchemy and Alembic, so cnnlab migrates one empty
store per set of versions into its cache and copies it. The copy holds no experiment: MLflow
adds its Default experiment on first open, with this store's own artifact location.

The copy is written to a private temporary file beside the target and linked into place, so a
store is either absent or whole, and two processes seeding the same path at once each see one
complete file. The template is used only when it is a regular file of this user in a folder only
this user can write (it becomes every new store). Any failure leaves the target absent, and
MLflow creates the store the slow way: seeding never fails a run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import sqlite3
import tempfile
from importlib import metadata
from pathlib import Path

from cnnlab._cache import NotPrivate, cache_root, open_private, private_folder

log = logging.getLogger(__name__)

# What decides the schema MLflow migrates to: the template is made again when any changes.
_SCHEMA_PACKAGES = ("mlflow", "sqlalchemy", "alembic")
_DEFAULT_ID = 0  # MLflow inserts it on first open when it is missing


def seed_store(path: Path) -> bool:
    """Put an empty, migrated MLflow store at `path` unless a file is already there. True when
    this call put it there; False when one was there or seeding failed (MLflow then creates
    the store itself)."""
    if path.exists():
        return False
    try:
        template = _template()
        return template is not None and _copy_into_place(template, path)
    except Exception as e:  # an optimisation only: never fail a run over it
        log.info("cnnlab: creating %s without the template (%s: %s)", path, type(e).__name__, e)
        return False


def template_path() -> Path:
    """Where the template for the installed MLflow, SQLAlchemy and Alembic lives."""
    key = hashlib.sha256()
    for name in _SCHEMA_PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        key.update(f"{name}=={version}\0".encode())
    return cache_root() / "stores" / f"mlflow-{key.hexdigest()[:16]}.db"


def _template() -> Path | None:
    """The template, made first if missing; None when the cache folder is not ours."""
    target = template_path()
    try:
        private_folder(target.parent)
    except NotPrivate as e:
        log.info("cnnlab: not using a store template (%s)", e)
        return None
    if not target.exists():
        _make_template(target)
    return target


def _make_template(target: Path) -> None:
    """Migrate an empty store in a private temporary file, empty it, and rename it into place."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    fd, tmp = tempfile.mkstemp(prefix=".template.", suffix=".db", dir=target.parent)
    os.close(fd)
    os.unlink(tmp)  # MLflow creates its tables only in a database with none: a new file
    try:
        with tempfile.TemporaryDirectory() as artifacts:
            store = SqlAlchemyStore(f"sqlite:///{tmp}", artifacts)
            store.engine.dispose()
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            # The Default experiment names this file's artifact folder: each copy makes its own.
            with db:
                db.execute("DELETE FROM experiments WHERE experiment_id = ?", (_DEFAULT_ID,))
            if db.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]:
                raise RuntimeError("MLflow's new store holds experiments other than Default")
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _copy_into_place(template: Path, path: Path) -> bool:
    """Copy the checked template to a temporary file beside `path`, then link it in; False when
    the template is not a private file or `path` appeared meanwhile."""
    try:
        src = open_private(template)
    except NotPrivate as e:
        log.info("cnnlab: not using the store template (%s)", e)
        return False
    try:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
        # 0o666 less the umask: the mode SQLite itself would give a new database file.
        dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            with os.fdopen(src, "rb", closefd=False) as a, os.fdopen(dst, "wb") as b:
                shutil.copyfileobj(a, b)
                b.flush()
                os.fsync(b.fileno())
            try:
                os.link(tmp, path)  # fails if something is there: a store is never replaced
            except FileExistsError:
                return False
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    finally:
        os.close(src)
