"""Crash and resume, in subprocesses: SIGKILL (nothing runs) and SIGTERM (runs end KILLED).

Each search is stopped in the middle of a trial; rerunning the same command must end with
exactly N trials with an outcome, no configuration run twice, and no run left RUNNING. The runs
stopped by a signal are processes of their own; the rerun that completes the search runs
through cnnlab.cli.main here, where torch and MLflow are imported already.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from search_helpers import SMALL_SPACE, all_runs, split_runs, write_config

from cnnlab.cli import main

# (engine, the signals that stop it, in turn, before the final run completes it)
CASES = [
    ("hyperopt", [signal.SIGKILL]),
    ("optuna", [signal.SIGTERM, signal.SIGKILL]),
]
TRIALS = 3


@pytest.mark.slow
@pytest.mark.parametrize("engine, signals", CASES, ids=[c[0] for c in CASES])
def test_a_killed_search_resumes_to_exactly_n_trials(
    engine, signals, tmp_path, made_store, monkeypatch, capsys
):
    uri = made_store(f"sqlite:///{tmp_path}/cnnlab-runs/mlflow.db")
    # Trials of a few seconds: a one-epoch trial on the tiny split can start and finish
    # between two looks at the store, and the search would end before any signal is sent.
    # Six epochs on one thread (two threads stall where other processes share the cores) and
    # 600 validation images take seconds; the native kernel is not timed in each process.
    overrides = [f"search.engine={engine}", f"search.trials={TRIALS}", "train.epochs=6"]
    overrides += ["data.val_fraction=0.01", "train.threads=1", "train.fused_stem=false"]
    config = write_config(tmp_path / "search.toml", overrides, SMALL_SPACE)
    args = ["tune", config, "--tracking-uri", uri]
    command = [sys.executable, "-m", "cnnlab.cli", *args]
    for number, sig in enumerate(signals, start=1):
        proc = subprocess.Popen(
            command + ["--quiet"], cwd=tmp_path, stderr=subprocess.PIPE, text=True
        )
        try:
            _wait_for_running_trial(uri, number, proc)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        if sig == signal.SIGTERM:
            assert proc.returncode == 143, err
            assert err.strip().splitlines()[-1] == "cnnlab: error: terminated (SIGTERM)"
            (parent,), children = split_runs(all_runs(uri))
            assert parent.info.status == "KILLED"
            assert not [c for c in children if c.info.status == "RUNNING"]
    monkeypatch.chdir(tmp_path)
    code = main([*args, "--json"])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["resumed"] and out["trials"] == TRIALS and out["succeeded"] == TRIALS
    assert f"{TRIALS}/{TRIALS} trials succeeded" in stdout
    (parent,), children = split_runs(all_runs(uri))
    assert parent.info.run_id == out["parent_run_id"] and parent.info.status == "FINISHED"
    assert not [r for r in all_runs(uri) if r.info.status == "RUNNING"]
    finished = [c for c in children if c.info.status != "KILLED"]
    killed = [c for c in children if c.info.status == "KILLED"]
    # A trial cut after its first epoch's checkpoint is continued in its own child run; one cut
    # before it stays KILLED beside the rerun.
    assert len(finished) == TRIALS and len(killed) <= len(signals)
    assert sorted(int(c.data.tags["cnnlab.trial"]) for c in finished) == list(range(TRIALS))
    configs = {tuple(c.data.params[k] for k in SMALL_SPACE) for c in finished}
    assert len(configs) == TRIALS, "a configuration ran twice"


def _wait_for_running_trial(uri: str, number: int, proc: subprocess.Popen) -> None:
    """Until the child run of trial `number` is RUNNING (earlier trials are done by then)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            runs = all_runs(uri)
        except Exception:  # the store is still being created
            runs = []
        if any(
            r.info.status == "RUNNING" and r.data.tags.get("cnnlab.trial") == str(number)
            for r in runs
        ):
            return
        time.sleep(0.3)
    pytest.fail(f"trial {number} never started")
