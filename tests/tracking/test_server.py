"""A real `cnnlab server` on 127.0.0.1: runs through it, and a server that goes away mid-run."""

import os
import socket
import subprocess
import sys
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
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tracking_server):
    return tracking_server


def train(uri, *args):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cnnlab.cli",
            "train",
            "--tracking-uri",
            uri,
            "--quiet",
            "--json",
            *TINY_RUN,
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_a_run_through_the_server_keeps_everything(server, tmp_path):
    proc = train(server.uri, "--set", "train.epochs=1")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    client = mlflow.MlflowClient(server.uri)
    (run,) = client.search_runs([client.get_experiment_by_name("cnnlab").experiment_id])
    assert run.info.status == "FINISHED"
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.toml", "model", "learning_curves.svg"} <= names
    # Artifacts are proxied by the server into its runs dir, not written by the client.
    assert list((server.runs_dir / "artifacts").rglob("state_dict.pt"))
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
    proc = train(server.uri, "--set", f"train.epochs={epochs}")
    try:
        client = mlflow.MlflowClient(server.uri)
        run_id = _wait_for_epoch(client, proc)
        server.stop()
        time.sleep(6)  # several epochs end while the server is away
        server.start()
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "buffering metrics" in err
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


def _wait_for_epoch(client, proc) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        exp = client.get_experiment_by_name("cnnlab")
        runs = client.search_runs([exp.experiment_id]) if exp else []
        if runs and client.get_metric_history(runs[0].info.run_id, "val_loss"):
            return runs[0].info.run_id
        time.sleep(0.5)
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
