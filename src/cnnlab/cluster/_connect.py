"""Joining a Ray cluster: `local` (one started here, in this process) or the address of a
running one (`ray start --head` on one machine, `ray start --address HEAD` on the others).

    cluster = connect("10.0.0.5:6379", uri)   # ClusterUnreachable within seconds if none answers
    with cluster:                             # disconnects (and stops a `local` one) after
        ... RayPool(cluster) ...

Everything here is checked before a store, a run or any data exists: Ray missing, an address
nobody answers at, and a store only this machine can write while the cluster has other nodes.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from cnnlab.config import ConfigError
from cnnlab.tracking import is_remote, shown

LOCAL = "local"
INSTALL = 'pip install "cnnlab[ray]"'
_ANSWER_WITHIN_S = 5.0  # a head's port that does not take a connection in 5 s is not there
# A `local` cluster's object store: the tasks pass configs and small results, never tensors.
_LOCAL_OBJECT_STORE = 100 * 1024**2


class ClusterUnreachable(Exception):
    """No Ray cluster answers at the address given (exit 8 on the command line)."""


@dataclass
class Cluster:
    """A connection to a Ray cluster; `nodes` alive when joined, their CPUs and GPUs."""

    address: str
    nodes: int
    cpus: float
    gpus: float
    _started_here: bool = field(default=False, repr=False)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        import ray

        if self._started_here:
            ray.shutdown()


def import_ray():
    """Ray, or ConfigError in one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--ray: Ray is not installed (expected it; {INSTALL})") from None
    return ray


def connect(address: str, tracking_uri: str) -> Cluster:
    """Joins the cluster at `address` (or starts a `local` one) for runs that log to
    `tracking_uri`. Raises ConfigError (Ray missing, a local store on a cluster of several
    nodes) or ClusterUnreachable, each one line, with nothing written anywhere."""
    ray = import_ray()
    if ray.is_initialized():  # the caller's own connection (a notebook): used, left open
        return _described(ray, address, tracking_uri, started_here=False)
    if address != LOCAL:
        _check_answers(address)
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")  # nothing leaves the machine
    options = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    try:
        if address == LOCAL:
            # address="local": a new cluster even where another one runs on this machine
            ray.init(address="local", object_store_memory=_LOCAL_OBJECT_STORE, **options)
        else:
            ray.init(address=address, **options)
    except ConnectionError as exc:
        raise ClusterUnreachable(f"--ray {address}: {_first_line(exc)}") from None
    try:
        return _described(ray, address, tracking_uri, started_here=True)
    except BaseException:
        ray.shutdown()
        raise


def _described(ray, address: str, tracking_uri: str, *, started_here: bool) -> Cluster:
    alive = [n for n in ray.nodes() if n.get("Alive")]
    cpus = sum(n["Resources"].get("CPU", 0) for n in alive)
    gpus = sum(n["Resources"].get("GPU", 0) for n in alive)
    if len(alive) > 1 and not is_remote(tracking_uri):
        raise ConfigError(
            f"--ray {address}: the cluster has {len(alive)} nodes, and the store "
            f"{shown(tracking_uri)} is a file on this machine that their runs cannot write "
            "(expected a tracking server: --tracking-uri http://HOST:PORT, e.g. cnnlab server)"
        )
    return Cluster(address, len(alive), cpus, gpus, started_here)


def _check_answers(address: str) -> None:
    """A TCP connection to the head, in seconds: ray.init alone retries for a minute."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(
            f"--ray: expected {LOCAL!r} or a head's HOST:PORT (as `ray start --head` "
            f"printed it), got {address!r}"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), _ANSWER_WITHIN_S):
            pass
    except OSError as exc:
        raise ClusterUnreachable(
            f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc}); "
            "expected the head's address, as `ray start --head` printed it"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
