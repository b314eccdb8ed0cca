"""A store checked before any work: within seconds, in one line, and never created by a read.

    check_store(uri)             # train, tune, study: a store that runs will be written to
    store = open_store(uri)      # report, export, predict, load_run, ui: a store that must exist

A server that does not answer, or a database that does not take a connection, raises
TrackingUnavailable (exit 5) after one try of a few seconds: MLflow's own client retries a dead
server for minutes. A server or database that refuses the credentials raises TrackingDenied (7).
Reading a store that is not there (a mistyped runs folder, an empty database) is a ConfigError
(2) and leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path

from cnnlab.config import ConfigError
from cnnlab.tracking._access import ANSWER_WITHIN_S, is_remote, probe, reason, shown
from cnnlab.tracking._adapter import Store
from cnnlab.tracking._errors import TrackingDenied, TrackingUnavailable
from cnnlab.tracking._store import store_file

CONNECT_WITHIN_S = 5  # a database's connect timeout: a dead host costs this, not minutes
DATABASES = ("postgresql", "mysql", "mssql")  # the SQLAlchemy stores MLflow runs on
_MLFLOW_TABLE = "experiments"  # a database holds an MLflow store once this table is there
# What PostgreSQL and MySQL answer when the credentials are wrong or missing.
_REFUSALS = ("authentication failed", "no password supplied", "access denied for user")


def check_store(uri: str, *, to_read: bool = False) -> None:
    """Raises unless the store at `uri` can be used now: TrackingUnavailable when it does not
    answer within seconds, TrackingDenied when it refuses the credentials and, with
    `to_read`, ConfigError when there is no store to read (nothing is created)."""
    path = store_file(uri)
    if path is not None:
        if to_read and not path.is_file():
            raise ConfigError(
                f"tracking store: expected an MLflow store at {path}, got no such file "
                "(--tracking-uri or --runs-dir names the store the runs went to)"
            )
    elif is_remote(uri):
        probe(uri, ANSWER_WITHIN_S)
    elif _database(uri):
        _check_database(uri, to_read)
    elif to_read:
        _check_folder(uri)


def open_store(uri: str) -> Store:
    """The store at `uri` for reading, checked first (see check_store); never created."""
    check_store(uri, to_read=True)
    return Store(uri)


def _database(uri: str) -> bool:
    return uri.split("://", 1)[0].split("+", 1)[0] in DATABASES


def _check_database(uri: str, to_read: bool) -> None:
    import sqlalchemy

    scheme = uri.split("://", 1)[0]
    # libpq and the MySQL drivers take a connect timeout; without it a dead host costs minutes.
    args = {"connect_timeout": CONNECT_WITHIN_S} if not scheme.startswith("mssql") else {}
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=args)
    except (ImportError, sqlalchemy.exc.ArgumentError) as exc:
        raise ConfigError(f"tracking store {shown(uri)}: {shown(reason(exc))}") from None
    try:
        with engine.connect() as conn:
            found = sqlalchemy.inspect(conn).has_table(_MLFLOW_TABLE)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise _database_error(uri, exc) from None
    finally:
        engine.dispose()
    if to_read and not found:
        raise ConfigError(
            f"tracking store {shown(uri)}: expected an MLflow store, got a database without one"
        )


def _database_error(uri: str, exc: BaseException) -> Exception:
    why = shown(reason(exc))
    if any(text in why.lower() for text in _REFUSALS):
        return TrackingDenied(f"tracking store {shown(uri)} refused the credentials: {why}")
    return TrackingUnavailable(f"tracking store {shown(uri)} does not answer: {why}")


def _check_folder(uri: str) -> None:
    """MLflow's file store: a folder (a plain path or file:///path)."""
    folder = (
        Path(uri.removeprefix("file://")) if "://" not in uri or uri.startswith("file://") else None
    )
    if folder is not None and not folder.is_dir():
        raise ConfigError(
            f"tracking store: expected an MLflow store at {folder}, got no such folder"
        )
