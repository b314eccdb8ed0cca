"""Shared fixtures: the real Fashion-MNIST (installed by scripts/setup.sh), cut small; a real
PostgreSQL and tracking server. A machine piece a test needs goes through env_helpers.require,
which fails the test naming the piece and how scripts/test.sh installs it."""

from __future__ import annotations

import os
import signal

import pytest
from env_helpers import missing, require, stop_group

from cnnlab.config import load_config
from cnnlab.data import DataError, load_fashion_mnist, make_splits

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    # The Ctrl-C tests send SIGINT as a terminal does. A suite started in the background of a
    # non-interactive shell inherits SIGINT ignored, and so would every process it starts (the
    # CLI leaves an ignored SIGINT ignored, as a user's `cmd &` expects): undo it here.
    signal.signal(signal.SIGINT, signal.default_int_handler)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two test workers share the cores: one PyTorch thread each (and in the processes they
    # start, which inherit the variable), as two OpenMP teams on two cores only wait on each
    # other. Tests that pin jobs to cores read the affinity, which stays whole.
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

# A model and run small enough to train in a second or two on two CPU cores.
TINY = [
    "model.filters=8",
    "model.hidden_units=[32]",
    "train.epochs=2",
    "train.batch_size=64",
    "train.eval_batch_size=500",
    "data.train_limit=1000",
]


@pytest.fixture(scope="session")
def fmnist():
    """The real data, from Debian's package or cnnlab's cache: the tests never download."""
    try:
        return load_fashion_mnist(download=False)
    except DataError as error:
        pytest.fail(f"{missing('fashion-mnist')} ({error})", pytrace=False)


@pytest.fixture
def kernel_always(monkeypatch):
    """The native first-block kernel wherever it fits, without timing it against PyTorch's ops
    first: for tests of the kernel inside whole runs, on any machine."""
    from cnnlab.fusion import ENV

    monkeypatch.setenv(ENV, "always")


@pytest.fixture
def c_compiler() -> str:
    """The C compiler that builds the fused kernel: tests of the kernel need it."""
    return require("cc")


@pytest.fixture(scope="session")
def tiny_splits(fmnist):
    """1,000 training images; validation and test cut to 1,000 each to keep evaluation cheap."""
    splits = make_splits(fmnist, val_fraction=0.1, train_limit=1000, seed=42)
    splits.val_x, splits.val_y = splits.val_x[:1000], splits.val_y[:1000]
    splits.test_x, splits.test_y = splits.test_x[:1000], splits.test_y[:1000]
    return splits


@pytest.fixture(scope="session")
def tiny_cfg():
    def make(*overrides: str):
        return load_config(None, [*TINY, *overrides])

    return make


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL (Debian's package) in a temporary folder on 127.0.0.1, stopped after.

    initdb refuses to run as root, so as root the server runs as the `postgres` user.
    """
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    bindir = require("postgresql")
    # Not under pytest's tmp folder: that is private to root, and the server runs as postgres.
    home = Path(tempfile.mkdtemp(prefix="cnnlab-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(home, "postgres")
    port = _free_port()
    data, log = home / "data", home / "server.log"

    def pg(*args):
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    pg(f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg(f"{bindir}/pg_ctl", "-D", str(data), "-o", options, "-l", str(log), "-w", "start")
    try:
        pg(f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "cnnlab")
        yield f"postgresql://postgres@127.0.0.1:{port}/cnnlab"
    finally:
        pg(f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


class TrackingServer:
    """`cnnlab server` in a subprocess (with its own worker process group), stopped after."""

    def __init__(self, runs_dir, port: int):
        self.runs_dir, self.port = runs_dir, port
        self.uri = f"http://127.0.0.1:{port}"
        self.proc = None

    def start(self) -> None:
        import subprocess
        import sys
        import time
        import urllib.request

        argv = [sys.executable, "-m", "cnnlab.cli", "server", "--runs-dir", str(self.runs_dir)]
        self.proc = subprocess.Popen(
            [*argv, "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("cnnlab server did not come up")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        stop_group(self.proc)


@pytest.fixture
def tracking_server(tmp_path):
    """A real `cnnlab server` on 127.0.0.1 over a fresh runs dir; .uri is its address."""
    server = TrackingServer(tmp_path / "server-runs", _free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shared_tracking_server(tmp_path_factory, empty_store):
    """One real `cnnlab server` for the whole session (a start costs seconds of MLflow's
    imports): each test keeps to its own experiment. A test that stops it starts it again."""
    runs_dir = tmp_path_factory.mktemp("shared-server") / "runs"
    empty_store(runs_dir / "mlflow.db")  # its store made already, as after a first start
    server = TrackingServer(runs_dir, _free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory):
    """empty_store(path): an empty MLflow store's database at `path`, and its URI. A copy of
    one made once per session: making a store runs MLflow's schema migrations, seconds each."""
    import shutil
    from pathlib import Path

    from cnnlab.tracking import Store

    made = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    Store(f"sqlite:///{made}").experiments()

    def copy(path) -> str:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(made, path)
        return f"sqlite:///{path}"

    return copy


@pytest.fixture
def uri(tmp_path, monkeypatch):
    """A fresh SQLite store in tmp_path, which is also the working directory; the
    environment's MLFLOW_TRACKING_URI out of the way."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path}/runs/mlflow.db"
