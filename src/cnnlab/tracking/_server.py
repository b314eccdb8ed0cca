"""The shared MLflow tracking server: the command line that starts it, and a reachability probe.

argv = server_command(backend_store_uri=None, artifacts_destination=None, runs_dir="cnnlab-runs",
                      host="127.0.0.1", port=5000, allowed_hosts=None)
os.execv(argv[0], argv)
"""

from __future__ import annotations

import ipaddress
import sys
import urllib.error
import urllib.request
from pathlib import Path

from cnnlab.config import ConfigError
from cnnlab.tracking._store import default_uri, prepare_store

LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


class TrackingUnavailable(RuntimeError):
    """The tracking server does not answer; the message is one line naming it."""


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
) -> list[str]:
    """argv of `mlflow server` with cnnlab's light settings: one worker, proxied artifacts."""
    if not is_loopback(host) and not allowed_hosts:
        raise ConfigError(
            f"--host {host}: binding beyond this machine needs --allowed-hosts "
            "(the host names clients use, e.g. --allowed-hosts mlflow.lab.example:5000)"
        )
    if not 0 < port < 65536:
        raise ConfigError(f"--port: expected 1..65535, got {port}")
    store = backend_store_uri or default_uri(runs_dir)
    prepare_store(store)
    artifacts = artifacts_destination or str(Path(runs_dir).resolve() / "artifacts")
    argv = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store]
    argv += ["--artifacts-destination", artifacts, "--serve-artifacts"]
    argv += ["--host", host, "--port", str(port), "--workers", "1"]
    if allowed_hosts:
        argv += ["--allowed-hosts", allowed_hosts]
    return argv


def probe(uri: str, timeout: float = 5.0) -> None:
    """Raises TrackingUnavailable unless an http(s) tracking server answers /health in time."""
    if not uri.startswith(("http://", "https://")):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status == 200:
                return
            detail = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        detail = f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        detail = getattr(exc, "reason", None) or exc
    raise TrackingUnavailable(f"tracking server {uri} does not answer: {detail}")
