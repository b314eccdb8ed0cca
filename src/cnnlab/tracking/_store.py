"""Where runs go: the tracking URI, the experiment, and the tags that make a run self-describing."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import tomllib
from pathlib import Path

from cnnlab._version import __version__
from cnnlab.config import TrackingConfig
from cnnlab.tracking._access import GuardedClient, is_remote
from cnnlab.tracking._template import seed_store
from cnnlab.tracking.tags import DATA_CHECKSUM_TAG, GIT_COMMIT_TAG, VERSION_TAG


def resolve_uri(cfg: TrackingConfig, override: str | None = None) -> str:
    """--tracking-uri, then MLFLOW_TRACKING_URI, then tracking.uri, then the embedded store."""
    for uri in (override, os.environ.get("MLFLOW_TRACKING_URI"), cfg.uri):
        if uri:
            return uri
    return default_uri(cfg.runs_dir)


def default_uri(runs_dir: str | Path) -> str:
    path = Path(runs_dir).resolve() / "mlflow.db"
    return f"sqlite:///{path}"


def store_file(uri: str) -> Path | None:
    """The database file of an embedded store (`sqlite:///path`); None for a server or another
    database. The one place that reads a store URI's path."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def prepare_store(uri: str) -> None:
    """Creates the folder an embedded store's file goes in and, for a new store, the file as a
    copy of an empty migrated one (see _template); nothing for other stores."""
    path = store_file(uri)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        seed_store(path)


def artifact_location(uri: str) -> str | None:
    """Artifacts of an embedded store live beside its database, not in the working directory."""
    path = store_file(uri)
    if path is None:
        return None  # a server decides where its artifacts go
    return (path.parent / "artifacts").as_uri()


def client(uri: str):
    """An MlflowClient on `uri`, creating the folder of an embedded store first; a server's
    client raises TrackingDenied on HTTP 401/403 (see _access.GuardedClient). The client under
    Store: cnnlab's modules talk to MLflow through a Store, not through this."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # cnnlab fetches small files (a config, weights) and says itself what it does: MLflow's
    # per-download progress bars would only fill a notebook's output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.tracking import MlflowClient

    prepare_store(uri)
    found = MlflowClient(tracking_uri=uri)
    # A server may refuse the credentials or a permission: one line and exit 7, not a traceback.
    return GuardedClient(found, uri) if is_remote(uri) else found


def cnnlab_checkout() -> Path | None:
    """The top level of cnnlab's own git checkout when this package runs from it (an editable
    install, PYTHONPATH=src); None for an installed copy, even one in a venv inside some other
    repository, whose commit says nothing of cnnlab's code."""
    package = Path(__file__).resolve().parents[1]
    try:
        top = Path(_git(package, "rev-parse", "--show-toplevel")).resolve()
        pyproject = tomllib.loads((top / "pyproject.toml").read_text(encoding="utf-8"))
        name = pyproject["project"]["name"]
    except (OSError, subprocess.SubprocessError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return None  # no git, no repository, or one that is not a Python project
    ours = name == "cnnlab" and (top / "src" / "cnnlab").resolve() == package
    return top if ours else None


def git_commit() -> str | None:
    """The commit of cnnlab's own checkout, with -dirty when it has local changes; None when
    cnnlab runs as an installed package (its version says which code it is)."""
    top = cnnlab_checkout()
    if top is None:
        return None
    try:
        commit = _git(top, "rev-parse", "HEAD")
        dirty = _git(top, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def user_commit() -> str | None:
    """The commit of the user's code that started this process, as MLflow tags the runs it
    starts itself: the repository of the Python script run (`python train.py` calling
    cnnlab.train), else cnnlab's checkout when cnnlab runs from one (its configs and studies
    are then the code). None for the installed `cnnlab` command and for notebooks: the code
    that trains is cnnlab's, at the version tagged."""
    script = _user_script()
    where = script.parent if script is not None else cnnlab_checkout()
    if where is None:
        return None
    try:
        return _git(where, "rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return None  # a script outside any repository


def _user_script() -> Path | None:
    """sys.argv[0] when it is a .py file that is not part of an installation: a console script
    (bin/cnnlab), `python -m` of an installed module or a notebook kernel is not user code."""
    if not sys.argv or not sys.argv[0].endswith(".py"):
        return None
    script = Path(sys.argv[0]).resolve()
    installed = {sys.prefix, sys.base_prefix, site.USER_BASE or sys.prefix}
    if not script.is_file() or any(script.is_relative_to(Path(p).resolve()) for p in installed):
        return None
    return script


def _git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
    )
    return out.stdout.strip()


def run_tags(data_checksum: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    tags = {VERSION_TAG: __version__}
    commit, users = git_commit(), user_commit()
    if commit:
        tags[GIT_COMMIT_TAG] = commit
    if users:
        tags["mlflow.source.git.commit"] = users
    if data_checksum:
        tags[DATA_CHECKSUM_TAG] = data_checksum
    tags.update(extra or {})
    return tags
