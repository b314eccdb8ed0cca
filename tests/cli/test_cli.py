"""The command line as users meet it: exit codes, one-line errors, nothing half-written."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest

from cnnlab.cli import main

ROOT = Path(__file__).resolve().parents[2]
COURSE = str(ROOT / "configs" / "course-cnn.toml")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory; the default store would appear in ./cnnlab-runs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def cli(*args, env=None, **kw):
    return subprocess.run(
        [sys.executable, "-m", "cnnlab.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        **kw,
    )


def store_runs(workdir, experiment="cnnlab"):
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/cnnlab-runs/mlflow.db")
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


@pytest.mark.slow
def test_train_json_run_is_readable_from_the_default_store(workdir):
    args = ["train", "--set", "train.epochs=1", "--set", "data.train_limit=2000", "--json"]
    # A smaller net and validation set than the defaults, and no timing of the native kernel
    # against PyTorch's ops first: nothing asserted here depends on them.
    small = ["model.filters=16", "model.hidden_units=[64]", "data.val_fraction=0.02"]
    small += ["train.fused_stem=false"]
    args += [arg for item in small for arg in ("--set", item)]
    started = time.monotonic()
    proc = cli(*args, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 60
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("run_id", "experiment", "val_accuracy", "test_accuracy", "test_loss", "seconds"):
        assert key in out
    assert out["epochs"] == 1 and out["test_accuracy"] > 0.5
    (run,) = store_runs(workdir)
    assert run.info.run_id == out["run_id"] and run.info.status == "FINISHED"
    assert run.data.params["data.train_limit"] == "2000"
    assert run.data.metrics["test_accuracy"] == out["test_accuracy"]


BAD = [
    (["--set", "train.lrr=0.1"], "did you mean train.lr?"),
    (["--set", "train.epochs=two"], "train.epochs: expected an integer, got str 'two'"),
    (["--set", "train.lr=0"], "train.lr: expected > 0"),
    (["--set", "train.lr=nan"], "train.lr: expected > 0, got nan"),
    (["--set", "train.epochs=0"], "train.epochs: expected > 0"),
    (["--set", "train.batch_size=0"], "train.batch_size: expected > 0"),
    (["--set", "model.dropout=1.5"], "model.dropout: expected in [0, 1)"),
    (["--set", "model.name=vgg"], "model.name: unknown model 'vgg'"),
    (["--set", "train.optimizer=rmsprop"], "train.optimizer: expected one of"),
    (["--set", "train.scheduler=warm"], "train.scheduler: expected one of"),
    (["--set", "model.kernel_size=29", "--set", "model.padding=0"], "kernel 29 exceeds"),
    (["--set", "model.num_layers=6", "--set", "model.padding=1"], "below 1x1"),
    (["--set", "train.lr"], "expected section.key=value"),
    (["--set", "train.lr=[1"], "is not a TOML value"),
    (["missing.toml"], "cannot read config file"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_no_run(args, message, workdir, capsys, monkeypatch):
    # A dataset folder that does not exist: reaching the data would exit 3, not 2.
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(workdir / "no-data"))
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (workdir / "cnnlab-runs").exists()


def test_malformed_toml_file(workdir, capsys):
    (workdir / "bad.toml").write_text("[train]\nlr = = 1\n")
    assert main(["train", "bad.toml"]) == 2
    assert "bad.toml: malformed TOML" in capsys.readouterr().err
    assert not (workdir / "cnnlab-runs").exists()


def test_config_that_is_not_text_is_bad_input(workdir, capsys):
    (workdir / "model.toml").write_bytes(b"[train]\nlr = 1\n\xff\xfe\x00")
    assert main(["train", "model.toml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "cnnlab: error: model.toml: not a UTF-8 text file (byte 15); a config is TOML text"
    ]
    assert not (workdir / "cnnlab-runs").exists()


def test_unknown_flag_is_one_line(workdir):
    proc = cli("train", "--epochs", "3")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr


def test_bad_data_exits_3_before_any_run(workdir, capsys):
    (workdir / "data").mkdir()
    assert main(["train", "--data-dir", str(workdir / "data")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train-images-idx3-ubyte" in err
    assert not (workdir / "cnnlab-runs").exists()


def test_summary_shows_the_course_chain_and_warns(capsys):
    assert main(["summary", COURSE]) == 0
    out = capsys.readouterr().out
    assert "28 -> 28 -> 14 -> 12 -> 6 -> 4 -> 2" in out and "2x2" in out
    assert main(["summary", COURSE, "--set", "model.num_layers=2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["final_map"] == [64, 6, 6] and not data["warnings"]


def test_summary_refuses_an_impossible_architecture(capsys):
    assert main(["summary", "--set", "model.num_layers=5", "--set", "model.padding=0"]) == 2
    assert "model: conv block" in capsys.readouterr().err


def test_data_verify_lists_the_four_files(capsys):
    assert main(["data", "--verify", "--json"]) == 0
    files = json.loads(capsys.readouterr().out)
    assert sorted(f["count"] for f in files) == [10000, 10000, 60000, 60000]


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupted_training_ends_the_run_killed(sig, code, workdir, empty_store):
    empty_store(workdir / "cnnlab-runs" / "mlflow.db")  # making it is not what this tests
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab.cli", "train", "--set", "train.epochs=50", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As in a terminal: a suite started in the background (`cmd &` in a script) passes
        # SIGINT down ignored, and cnnlab rightly leaves an ignored SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            time.sleep(0.1)
            # The run logs its config as soon as it opens; the test stays off the database
            # until then, so it never races the CLI's writes to it.
            if list((workdir / "cnnlab-runs").glob("artifacts/*/artifacts/config.toml")):
                break
        else:
            pytest.fail("the run never started")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    (run,) = store_runs(workdir)
    assert run.info.status == "KILLED"


@pytest.mark.slow
def test_ui_serves_the_store_on_localhost(workdir, empty_store, capsys, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def exec_ui(*args):  # main() would replace this very process with MLflow's UI
        raise AssertionError(f"cnnlab ui started a UI on no store: {args}")

    # No store yet: one line and exit 2, and reading it creates none.
    monkeypatch.setattr(os, "execve", exec_ui)
    assert main(["ui", "--port", str(port)]) == 2
    assert "expected an MLflow store at" in capsys.readouterr().err
    assert not (workdir / "cnnlab-runs").exists()
    empty_store(workdir / "cnnlab-runs" / "mlflow.db")  # an empty store, as runs leave
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab.cli", "ui", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the UI never answered")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
