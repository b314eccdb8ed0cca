"""The shared MLflow tracking server: what `cnnlab server` executes.

launch = server_command(backend_store_uri=None, artifacts_destination=None, runs_dir="cnnlab-runs",
                        host="127.0.0.1", port=5000, allowed_hosts=None, auth=True,
                        tls_cert="server.pem", tls_key="server.key")
os.execve(launch.argv[0], launch.argv, launch.environ())

Nobody gets an open server by accident: beyond loopback it needs --auth (MLflow's basic-auth
app; users in <runs dir>/auth.db) or an explicit --insecure. TLS is uvicorn's, with the
certificate and key the user gives. Secrets travel in the environment, never in argv.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import ssl
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.config import ConfigError
from cnnlab.tracking._auth import ADMIN_PASSWORD_ENV, AUTH_DB, auth_settings
from cnnlab.tracking._store import default_uri, prepare_store

LOOPBACK_NAMES = ("localhost", "localhost.localdomain")
# MLflow's job runner (a supervisor and seven huey consumers, each importing MLflow) runs the
# GenAI jobs of MLflow's UI, which cnnlab never submits: off, the server is eight processes
# lighter, each of which would import MLflow as it starts. A user who sets the variable keeps
# their choice.
LIGHT_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def light_environ(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with cnnlab's light server settings where the user set none,
    plus `env`, less cnnlab's own secret."""
    base = {k: v for k, v in os.environ.items() if k != ADMIN_PASSWORD_ENV}
    return {**LIGHT_SERVER_ENV, **base, **(env or {})}


@dataclass(frozen=True)
class ServerLaunch:
    """What `cnnlab server` executes: argv, the variables it adds to the environment (where
    secrets go), the address clients use, and what it serves."""

    argv: list[str]
    env: dict[str, str]
    url: str
    store: str
    users: Path | None = None  # the auth database, with --auth
    warnings: list[str] = field(default_factory=list)

    def environ(self) -> dict[str, str]:
        """The server's whole environment: light_environ(env)."""
        return light_environ(self.env)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def server_command(
    *,
    backend_store_uri: str | None,
    artifacts_destination: str | None,
    runs_dir: str,
    host: str,
    port: int,
    allowed_hosts: str | None,
    auth: bool = False,
    admin_user: str = "admin",
    admin_password_file: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    insecure: bool = False,
) -> ServerLaunch:
    """`mlflow server` with cnnlab's light settings (one worker, no job runner, proxied
    artifacts), and:

    auth: MLflow's basic-auth app; users in <runs dir>/auth.db, new users READ. Its first start
        creates `admin_user` with the password from `admin_password_file` (only its owner may
        read it) or CNNLAB_ADMIN_PASSWORD.
    tls_cert, tls_key: serve https with this certificate and its (unencrypted) key.
    insecure: allow a bind beyond loopback without auth.

    ConfigError (one line) for every refusal; nothing is started here."""
    _check_bind(host, allowed_hosts, auth, insecure)
    if not 0 < port < 65536:
        raise ConfigError(f"--port: expected 1..65535, got {port}")
    if admin_password_file and not auth:
        raise ConfigError("--admin-password-file: the admin's password is for --auth")
    store = backend_store_uri or default_uri(runs_dir)
    prepare_store(store)
    artifacts = artifacts_destination or str(Path(runs_dir).resolve() / "artifacts")
    argv = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store]
    argv += ["--artifacts-destination", artifacts, "--serve-artifacts"]
    argv += ["--host", host, "--port", str(port), "--workers", "1"]
    if allowed_hosts:
        argv += ["--allowed-hosts", allowed_hosts]
    argv += _tls_args(tls_cert, tls_key)
    env, users = {}, None
    if auth:
        env = auth_settings(runs_dir, admin_user, admin_password_file)
        argv += ["--app-name", "basic-auth"]
        users = Path(runs_dir).resolve() / AUTH_DB
    scheme = "https" if tls_cert else "http"
    warnings = []
    if auth and not tls_cert and not is_loopback(host):
        warnings.append(
            "passwords cross the network readable by anyone on the way: give the server "
            "--tls-cert and --tls-key"
        )
    return ServerLaunch(argv, env, f"{scheme}://{host}:{port}", store, users, warnings)


def _check_bind(host: str, allowed_hosts: str | None, auth: bool, insecure: bool) -> None:
    if is_loopback(host):
        return
    if not allowed_hosts:
        raise ConfigError(
            f"--host {host}: binding beyond this machine needs --allowed-hosts "
            "(the host names clients use, e.g. --allowed-hosts mlflow.lab.example:5000)"
        )
    if not auth and not insecure:
        raise ConfigError(
            f"--host {host}: a server beyond this machine needs --auth (users and passwords); "
            "--insecure serves it to anyone who can reach it"
        )


def _tls_args(cert: str | None, key: str | None) -> list[str]:
    """uvicorn's TLS options, after checking that the pair loads (a bad pair would otherwise
    fail in the server's worker, as a traceback)."""
    if not cert and not key:
        return []
    if not (cert and key):
        given = "--tls-cert" if cert else "--tls-key"
        raise ConfigError(f"{given}: TLS needs both --tls-cert FILE and --tls-key FILE")
    cert_path, key_path = Path(cert).resolve(), Path(key).resolve()
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_path, key_path, password=_no_passphrase)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"--tls-cert {cert} / --tls-key {key}: cannot load the certificate and its key "
            f"({_first_line(exc)}); expected PEM files, the key unencrypted"
        ) from None
    opts = ["--ssl-certfile", str(cert_path), "--ssl-keyfile", str(key_path)]
    # A stop would otherwise wait up to 30 s for each idle keep-alive client to answer the TLS
    # close (asyncio's SSL shutdown timeout); a client's next request simply reconnects.
    opts += ["--timeout-graceful-shutdown", "5"]
    return ["--uvicorn-opts", shlex.join(opts)]


def _no_passphrase() -> str:
    raise ValueError("the key is encrypted")  # rather than a prompt on the terminal


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
