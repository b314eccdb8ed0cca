"""Resume as users meet it: a run killed mid-way goes on with `cnnlab train --resume RUN_ID` in
the same MLflow run and ends with the numbers of a run never stopped; a search rerun goes on
with its cut trial; what cannot be resumed is refused in one line, exit 2, nothing written.

Only the run that is killed needs a process of its own: the runs it is compared with and the
resume run through cnnlab.cli.main here, where torch and MLflow are imported already."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from cnnlab.cli import main
from cnnlab.config import load_config, override_text, to_toml
from cnnlab.runs import train_run
from cnnlab.tracking import checkpoint_file
from cnnlab.training import Callback

# Small and exact: fp32 on one thread gives the same numbers in every process, once the first
# block's way is fixed (the workdir fixture) rather than left to the verdict this machine keeps:
# the kernel and PyTorch's ops round differently. 600 validation images, not 6,000: each
# epoch's evaluation would cost more than its training.
TINY = [
    "data.train_limit=2000",
    "data.val_fraction=0.01",
    "model.filters=8",
    "model.hidden_units=[32]",
    "train.epochs=6",
    "train.precision=fp32",
    "train.threads=1",
    "tracking.log_weights=false",
]


@pytest.fixture
def workdir(tmp_path, monkeypatch, kernel_always):
    """An empty working directory; the default store appears in ./cnnlab-runs. The first
    block's way is fixed (kernel_always), here and in the processes the tests start."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture
def made_store(workdir, empty_store):
    """The working directory's default store, its tables made."""
    empty_store(workdir / "cnnlab-runs" / "mlflow.db")
    return workdir


def cli(capsys, *args) -> dict:
    """`cnnlab ARGS --json` in this process, in the working directory; its JSON line."""
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out.splitlines()[-1])


def sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def client(workdir: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{workdir}/cnnlab-runs/mlflow.db")


def runs(workdir: Path, experiment: str = "cnnlab") -> list:
    c = client(workdir)
    exp = c.get_experiment_by_name(experiment)
    return c.search_runs([exp.experiment_id], max_results=100) if exp else []


def history(workdir: Path, run_id: str, key: str = "val_loss") -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client(workdir).get_metric_history(run_id, key)]


def kill_after_epoch(command: list[str], workdir: Path, epoch: int) -> int:
    """Starts `command`, SIGKILLs it once a checkpoint of `epoch` or later is on disk (nothing
    of the process runs after: its run stays RUNNING); returns the checkpoint's epoch."""
    proc = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            saved = _checkpoint_epoch(workdir)
            if saved >= epoch:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return _checkpoint_epoch(workdir)
            time.sleep(0.05)
        pytest.fail(f"no checkpoint of epoch {epoch} appeared")
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


def _checkpoint_epoch(workdir: Path) -> int:
    found = list((workdir / "cnnlab-runs" / "checkpoints").glob("*/last.pt"))
    if not found:
        return 0
    (path,) = found  # one run at a time is cut
    return torch.load(path, weights_only=True)["epoch"]  # replaced whole, never half-written


# ---------------------------------------------------------------- cnnlab train --resume


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_numbers_of_a_run_never_stopped(made_store, capsys):
    workdir = made_store
    uncut_id = cli(capsys, "train", *sets(TINY))["run_id"]
    command = [sys.executable, "-m", "cnnlab.cli", "train", *sets(TINY), "--quiet"]
    cut_at = kill_after_epoch(command, workdir, epoch=2)
    (cut,) = [r for r in runs(workdir) if r.info.run_id != uncut_id]
    assert cut.info.status == "RUNNING"  # SIGKILL: nobody ended it
    assert 2 <= cut_at < 6 and len(history(workdir, cut.info.run_id)) < 6

    out = cli(capsys, "train", "--resume", cut.info.run_id)
    run = client(workdir).get_run(cut.info.run_id)
    assert out["run_id"] == cut.info.run_id and run.info.status == "FINISHED"
    assert run.data.tags["cnnlab.resumed_after_epoch"] == str(cut_at)
    # Every epoch logged once, and each the uncut run's value, bit for bit.
    assert history(workdir, cut.info.run_id) == history(workdir, uncut_id)
    assert [step for step, _ in history(workdir, uncut_id)] == [1, 2, 3, 4, 5, 6]
    expected = client(workdir).get_run(uncut_id).data.metrics
    for key in ("test_accuracy", "test_loss", "best_val_loss", "best_epoch"):
        assert run.data.metrics[key] == expected[key], key
    assert not checkpoint_file(out["tracking_uri"], cut.info.run_id).parent.exists()


# ---------------------------------------------------------------- refusals


class CutAt(Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_start(self, state):
        if state.epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, empty_store):
    """A store with a FINISHED run and a KILLED one whose checkpoint holds epoch 1."""
    folder = tmp_path_factory.mktemp("store")
    empty_store(folder / "cnnlab-runs" / "mlflow.db")
    uri = f"sqlite:///{folder}/cnnlab-runs/mlflow.db"
    cfg = load_config(None, [*TINY, "train.epochs=2", "data.train_limit=1000"])
    finished = train_run(cfg, tracking_uri=uri).run_id
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tracking_uri=uri, callbacks=[CutAt(2)])
    (killed,) = [r.info.run_id for r in runs(folder) if r.info.status == "KILLED"]
    return folder, {"finished": finished, "killed": killed}


@pytest.fixture
def store(pristine, workdir):
    """A copy of the pristine store in the working directory, to damage at will."""
    folder, ids = pristine
    shutil.copytree(folder / "cnnlab-runs", workdir / "cnnlab-runs")
    return workdir / "cnnlab-runs", ids


def state_of(runs_dir: Path) -> dict:
    """Every file's bytes and every run's status, metrics and tags: what a refusal must keep."""
    files = {
        str(p.relative_to(runs_dir)): p.read_bytes() for p in runs_dir.rglob("*") if p.is_file()
    }
    found = {
        r.info.run_id: (r.info.status, r.info.end_time, r.data.metrics, r.data.tags)
        for r in runs(runs_dir.parent)
    }
    return {"files": files, "runs": found}


def _damage(runs_dir: Path, run_id: str, how: str) -> None:
    path = runs_dir / "checkpoints" / run_id / "last.pt"
    if how == "missing":
        path.unlink()
    elif how == "corrupt":
        path.write_bytes(path.read_bytes()[:1000])  # a write cut short by a full disk
    elif how == "foreign":
        torch.save({"head.3.weight": torch.zeros(10, 32)}, path)  # a plain state_dict
    elif how == "another run's":
        data = torch.load(path, weights_only=True)
        data["identity"]["run"] = "0" * 32
        torch.save(data, path)
    elif how == "other shapes":
        data = torch.load(path, weights_only=True)
        data["model"]["head.3.weight"] = torch.zeros(10, 16)
        torch.save(data, path)


REFUSED = {
    "unknown run": ("nope", "killed", "resume: no run 'nope' in sqlite:///"),
    "finished run": ("finished", None, "is FINISHED; expected a run cut short"),
    "no checkpoint": ("killed", "missing", "has no checkpoint ("),
    "corrupt checkpoint": ("killed", "corrupt", "not a readable checkpoint"),
    "foreign checkpoint": ("killed", "foreign", "not a cnnlab checkpoint"),
    "another run's checkpoint": ("killed", "another run's", "written for run '000"),
    "other shapes": ("killed", "other shapes", "head.3.weight has shape [10, 16] in the"),
}


@pytest.mark.slow
@pytest.mark.parametrize("which, damage, message", REFUSED.values(), ids=REFUSED.keys())
def test_what_cannot_be_resumed_is_refused_in_one_line(which, damage, message, store, capsys):
    runs_dir, ids = store
    if damage:
        _damage(runs_dir, ids["killed"], damage)
    before = state_of(runs_dir)
    code = main(["train", "--resume", ids.get(which, which), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert state_of(runs_dir) == before  # nothing written, the run not reopened


def test_resume_takes_no_config_and_needs_a_store(workdir, capsys):
    for args in (["course.toml"], ["--set", "train.lr=0.1"], ["--experiment", "x"]):
        assert main(["train", "--resume", "abc", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "expected no config file, --set or --experiment" in err
    assert main(["train", "--resume", "abc"]) == 2
    assert "resume: no run store at" in capsys.readouterr().err
    assert list(workdir.iterdir()) == []  # no store created to look the run up


# ---------------------------------------------------------------- a search's cut trial

SPACE = {"train.lr": {"dist": "loguniform", "low": 1e-3, "high": 3e-3}}


def _search_config(path: Path, experiment: str) -> str:
    items = [*TINY, "search.trials=1", f'tracking.experiment="{experiment}"']
    cfg = load_config(None, [*items, override_text("search.space", SPACE)])
    path.write_text(to_toml(cfg))
    return str(path)


def _trial_runs(workdir: Path, experiment: str) -> list:
    return [r for r in runs(workdir, experiment) if r.data.tags.get("cnnlab.run_kind") == "trial"]


@pytest.mark.slow
def test_a_search_rerun_resumes_its_cut_trial_where_it_was_killed(made_store, capsys):
    workdir = made_store
    cli(capsys, "tune", _search_config(workdir / "uncut.toml", "uncut"), "--quiet")
    config = _search_config(workdir / "cut.toml", "cut")
    command = [sys.executable, "-m", "cnnlab.cli", "tune", config, "--quiet"]
    cut_at = kill_after_epoch(command, workdir, epoch=2)
    (cut,) = _trial_runs(workdir, "cut")
    assert 2 <= cut_at < 6 and cut.info.status == "RUNNING"

    out = cli(capsys, "tune", config)
    assert out["resumed"] and out["succeeded"] == 1
    (trial,) = _trial_runs(workdir, "cut")  # the same child run, not a second one
    (reference,) = _trial_runs(workdir, "uncut")
    assert trial.info.run_id == cut.info.run_id == out["best_run_id"]
    assert trial.info.status == "FINISHED"
    assert trial.data.tags["cnnlab.resumed_after_epoch"] == str(cut_at)
    assert trial.data.params["train.lr"] == reference.data.params["train.lr"]
    # Its epochs once each, from epoch 1 to 6, and the uncut trial's values exactly.
    assert history(workdir, trial.info.run_id) == history(workdir, reference.info.run_id)
    assert trial.data.metrics["best_val_loss"] == reference.data.metrics["best_val_loss"]
    assert not (workdir / "cnnlab-runs" / "checkpoints" / trial.info.run_id).exists()
