"""A real `cnnlab server` on 127.0.0.1: runs through it, and a server that goes away mid-run."""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest

from cnnlab.cli import main

TINY_RUN = [
    "--set",
    "model.filters=8",
    "--set",
    "model.hidden_units=[32]",
    "--set",
    "data.train_limit=3000",
    "--set",
    "train.eval_batch_size=500",
    "--set",
    "train.fused_stem=false",  # no timing of the native kernel against PyTorch's first
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(shared_tracking_server):
    """The session's server, up again after a test that stopped it and failed before its
    restart."""
    yield shared_tracking_server
    if not shared_tracking_server.running:
        shared_tracking_server.start()


def train_args(uri: str, experiment: str, *args: str) -> list[str]:
    """`cnnlab train` into `experiment` (the server is shared: each test has its own)."""
    tracking = ["--tracking-uri", uri, "--set", f'tracking.experiment="{experiment}"']
    return ["train", *tracking, "--quiet", "--json", *TINY_RUN, *args]


@pytest.mark.slow
def test_a_run_through_the_server_keeps_everything(server, capsys):
    # In this process: a `cnnlab` process would add seconds of imports and test nothing more.
    assert main(train_args(server.uri, "keeps-everything", "--set", "train.epochs=1")) == 0
    capsys.readouterr()
    client = mlflow.MlflowClient(server.uri)
    (run,) = client.search_runs([client.get_experiment_by_name("keeps-everything").experiment_id])
    assert run.info.status == "FINISHED"
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.toml", "model", "learning_curves.svg"} <= names
    # Artifacts are proxied by the server into its runs dir, not written by the client.
    stored = (server.runs_dir / "artifacts").rglob("state_dict.pt")
    assert [p for p in stored if run.info.run_id in p.parts]
    # One MLflow worker and no job runner: no huey consumer in the server's process group.
    group = [p for p in Path("/proc").glob("[0-9]*") if _group_of(p) == server.proc.pid]
    commands = [(p / "cmdline").read_bytes() for p in group]
    assert commands and not [c for c in commands if b"huey" in c], commands


def _group_of(proc_dir) -> int | None:
    try:
        return os.getpgid(int(proc_dir.name))
    except (ProcessLookupError, PermissionError):
        return None


@pytest.mark.slow
def test_server_away_mid_run_buffers_metrics_and_ends_right(server):
    epochs = 6
    # No MLflow model: its seconds of saving come after the outage and test nothing of it.
    args = ["--set", f"train.epochs={epochs}", "--set", "tracking.log_model=false"]
    args = train_args(server.uri, "away", *args)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    err = Stderr(proc)
    try:
        client = mlflow.MlflowClient(server.uri)
        run_id = _wait_for_epoch(client, proc, err)
        server.stop()
        # Back as soon as an epoch has ended while it was away (its restart takes seconds, in
        # which more epochs end), rather than after a fixed sleep.
        assert err.buffering.wait(timeout=120), err.text()
        server.start()
        proc.wait(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.text()
    assert "buffering metrics" in err.text()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run_id, "val_loss")
    assert sorted(m.step for m in history) == list(range(1, epochs + 1))
    assert "were buffered" in run.data.tags["cnnlab.tracking_gap"]
    # Training never waited long on the dead server: between one epoch's metrics being logged
    # and the next ones, only the next epoch's own time passed (plus a few seconds at most).
    stamps = sorted((m.step, m.timestamp / 1000) for m in history)
    seconds = dict(
        sorted((m.step, m.value) for m in client.get_metric_history(run_id, "epoch_seconds"))
    )
    waits = [t1 - t0 - seconds[step] for (_, t0), (step, t1) in zip(stamps, stamps[1:])]
    assert max(waits) < 10, waits


class Stderr:
    """A process's stderr, read as it comes: `buffering` is set once it warns that the server
    is away."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines = proc, []
        self.buffering = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if "buffering metrics" in line:
                self.buffering.set()

    def text(self) -> str:
        """What it wrote so far; all of it once the process has ended."""
        if self.proc.poll() is not None:
            self.reader.join(timeout=10)
        return "".join(self.lines)


def _wait_for_epoch(client, proc, err: Stderr) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, err.text()
        exp = client.get_experiment_by_name("away")
        runs = client.search_runs([exp.experiment_id]) if exp else []
        if runs and client.get_metric_history(runs[0].info.run_id, "val_loss"):
            return runs[0].info.run_id
        time.sleep(0.2)
    pytest.fail("no epoch reached the server")


def test_unreachable_server_fails_fast_before_any_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(tmp_path / "no-data"))
    started = time.monotonic()
    assert main(["train", "--tracking-uri", f"http://127.0.0.1:{free_port()}"]) == 5
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not answer" in err


def test_server_refuses_a_public_bind_without_allowed_hosts(capsys):
    assert main(["server", "--host", "0.0.0.0"]) == 2
    assert "--allowed-hosts" in capsys.readouterr().err
