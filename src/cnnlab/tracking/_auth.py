"""A team server's users, through MLflow's own basic-auth app (`mlflow server --app-name
basic-auth`): the admin's secret, the server's private auth config, adding users and granting
them permissions on experiments.

    env = auth_settings("cnnlab-runs", admin_user="admin")  # reads CNNLAB_ADMIN_PASSWORD
    add_user("https://tracking:5000", "ana", password)       # as the admin MLflow's client finds
    grant("https://tracking:5000", "ana", "night-1", "EDIT")

Secrets never travel in argv: the admin's password comes from CNNLAB_ADMIN_PASSWORD or a file
only its owner can read, and reaches MLflow in its environment (MLFLOW_AUTH_ADMIN_PASSWORD),
not in the config file. The admin acting on users is whoever MLflow's client authenticates as
(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, or ~/.mlflow/credentials).
"""

from __future__ import annotations

import getpass
import os
import secrets
import stat
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.config import ConfigError
from cnnlab.tracking._access import probe, refusal, shown

ADMIN_PASSWORD_ENV = "CNNLAB_ADMIN_PASSWORD"
USER_PASSWORD_ENV = "CNNLAB_USER_PASSWORD"
AUTH_DB, AUTH_CONFIG = "auth.db", "auth.ini"  # beside the store, in the runs dir
DEFAULT_PERMISSION = "READ"  # what a new user may do on experiments nobody granted them
# What MLflow 3.17 grants on one experiment; DENY refuses even what the default would allow.
PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE", "DENY")
ADMIN_ONLY = "users and permissions are managed by an admin of the server"
# How long the server trusts a password it has checked. Each check is a deliberately slow
# scrypt hash, and a report or a run makes hundreds of requests; MLflow's cache keeps an HMAC of
# the password under a key made at each start. The server has one worker, so a password change
# or a deleted user through the API takes effect at once; an edit of auth.db by hand, within
# this many seconds. Failed checks are never cached.
CREDENTIAL_CACHE_SECONDS = 60


@dataclass(frozen=True)
class TeamUser:
    """A user of an auth-enabled server, as the server created it."""

    name: str
    is_admin: bool


@dataclass(frozen=True)
class Grant:
    """A permission of one user on one experiment, as the server stored it."""

    user: str
    experiment: str
    experiment_id: str
    permission: str


# ---------------------------------------------------------------- secrets


def read_secret(
    env: str, file: str | None, option: str, prompt: Callable[[], str] | None = None
) -> str | None:
    """A password from `file` (only its owner may read it), else the environment variable `env`,
    else `prompt()` when given; None when none of them has one. ConfigError for a file others
    can read, a missing file or an empty secret. Trailing newlines of a file are dropped."""
    if file:
        return _nonempty(_private_text(Path(file), option), f"{option} {file}")
    if os.environ.get(env):
        return os.environ[env]
    return _nonempty(prompt(), "the password typed") if prompt else None


def typed_password(name: str) -> str:
    """Asks twice on the terminal, showing nothing; ConfigError when the two differ."""
    first = getpass.getpass(f"password for {name}: ")
    if getpass.getpass(f"again, password for {name}: ") != first:
        raise ConfigError(f"password for {name}: the two entries differ")
    return first


def _private_text(path: Path, option: str) -> str:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"{option} {path}: readable by others (mode {mode:o}); expected a file only its "
                f"owner can read (chmod 600 {path})"
            )
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot read it ({exc.strerror})") from None


def _nonempty(secret: str, where: str) -> str:
    if not secret:
        raise ConfigError(f"{where}: the password is empty")
    return secret


def check_password(password: str, whose: str) -> None:
    """MLflow's own password policy, checked before any server is asked, as one line."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_password

    try:
        _validate_password(password)
    except MlflowException as exc:
        raise ConfigError(f"{whose}: {exc.message}") from None


# ---------------------------------------------------------------- the server's side


def auth_settings(
    runs_dir: str | Path, admin_user: str, password_file: str | None = None
) -> dict[str, str]:
    """The environment MLflow's basic-auth app runs with: a config file (mode 0600) in
    `runs_dir` that keeps users in `<runs dir>/auth.db` and gives new users READ, the admin's
    password on the first start (from `password_file` or CNNLAB_ADMIN_PASSWORD) and a CSRF key.

    ConfigError when the first start has no admin password, or the password is too short."""
    folder = Path(runs_dir).resolve()
    db = folder / AUTH_DB
    password = read_secret(ADMIN_PASSWORD_ENV, password_file, "--admin-password-file")
    if password is None and not _has_users(db):
        raise ConfigError(
            f"--auth: {db} does not exist yet, and its first start creates the admin "
            f"{admin_user!r}: give the password in {ADMIN_PASSWORD_ENV} or --admin-password-file"
        )
    if password is not None:
        where = f"--admin-password-file {password_file}" if password_file else ADMIN_PASSWORD_ENV
        check_password(password, f"the admin's password ({where})")
    folder.mkdir(parents=True, exist_ok=True)
    config = _write_private(folder / AUTH_CONFIG, _config(db, admin_user))
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        # CSRF tokens of MLflow's sign-up page; one worker, so a key per start serves it.
        "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
        or secrets.token_hex(32),
    }
    if password is not None:  # MLflow reads it only while the admin does not exist
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = password
    if not db.exists():  # created private: it holds the users' password hashes
        _write_private(db, "")
    return env


def _has_users(db: Path) -> bool:
    """Whether a server started on this auth database (an empty file is one made private here
    by a start that went no further)."""
    return db.exists() and db.stat().st_size > 0


def _config(db: Path, admin_user: str) -> str:
    return (
        "[mlflow]\n"
        f"default_permission = {DEFAULT_PERMISSION}\n"
        f"database_uri = sqlite:///{db}\n"
        f"admin_username = {admin_user}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        f"auth_cache_ttl_seconds = {CREDENTIAL_CACHE_SECONDS}\n"
    )


def _write_private(path: Path, text: str) -> Path:
    """Writes `text` to `path` readable by its owner only, whatever mode it had before."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)
    return path


# ---------------------------------------------------------------- users and permissions


def add_user(uri: str, name: str, password: str) -> TeamUser:
    """Creates user `name` on the auth-enabled server at `uri`, as the admin MLflow's client
    authenticates as. The new user may READ every experiment until granted more.

    ConfigError: a password MLflow refuses, a name that exists; TrackingDenied: the caller is
    not an admin (or not who they say); TrackingUnavailable: no server answers."""
    check_password(password, f"password for {name}")
    probe(uri)  # an absent server fails in seconds, not after MLflow's retries
    user = _admin_call(uri, "create user", name, lambda c: c.create_user(name, password))
    return TeamUser(user.username, bool(user.is_admin))


def grant(uri: str, name: str, experiment: str, permission: str) -> Grant:
    """Gives user `name` `permission` (READ, USE, EDIT, MANAGE or DENY) on experiment
    `experiment`, which is created (owned by the admin) when the server has none by that name.
    EDIT lets a user train and tune into it; MANAGE also delete it and grant others."""
    from cnnlab.tracking._adapter import Store

    permission = permission.upper()
    if permission not in PERMISSIONS:
        raise ConfigError(
            f"permission: expected one of {', '.join(PERMISSIONS)}, got {permission!r}"
        )
    probe(uri)  # before the experiment is looked up: an absent server fails in seconds
    experiment_id = Store(uri).ensure_experiment(experiment)
    _admin_call(
        uri,
        "grant user permission",
        name,
        lambda c: c.grant_user_permission(name, "experiment", experiment_id, permission),
    )
    return Grant(name, experiment, experiment_id, permission)


def _admin_call(uri: str, action: str, name: str, call: Callable[[Any], Any]) -> Any:
    """`call(auth client)`, its errors as cnnlab's one-line errors."""
    from mlflow.exceptions import MlflowException, RestException

    try:
        return call(_auth_client(uri))
    except MlflowException as exc:
        error = refusal(exc, uri, action, hint=ADMIN_ONLY)
        if error is not None:
            raise error from None
        if not isinstance(exc, RestException) and exc.get_http_status_code() == 404:
            raise ConfigError(
                f"tracking server {shown(uri)} keeps no users: it runs without --auth"
            ) from None
        message = (exc.message.splitlines() or [exc.error_code])[0]
        raise ConfigError(f"{action} {name}: {message.split('. Error: ')[0]}") from None


def _auth_client(uri: str) -> Any:
    """MLflow's client of its basic-auth app (its import warns of the server's deprecations,
    which are not the user's business)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mlflow.server import get_app_client

        return get_app_client("basic-auth", tracking_uri=uri)
