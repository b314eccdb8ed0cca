"""`cnnlab study --jobs N`: train runs in worker processes, the same runs and figures as one at a
time, one SQLite store written by several at once, Ctrl-C and resume."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnlab._pool import WorkerPool, core_shares
from cnnlab.config import ConfigError

# WorkerPool's workers import this module to find fail_on_odd: MLflow, the study and
# test_study are imported where they are used, so that each worker starts in a fraction of a
# second rather than the ~7 s those imports take.


def step_text(variants: str) -> str:
    """test_study's tiny step with these variants, two seeds and one thread per run."""
    from test_study import TINY_STEP

    head, rest = TINY_STEP.format(epochs=2).split("variants = ", 1)
    rest = rest.split("\n", 1)[1]
    return f"{head}variants = {variants}\nseeds = [1, 2]\n{rest}threads = 1\n"


def run_study(folder: Path, uri: str, **kwargs):
    from cnnlab.study import run_study

    return run_study(folder, tracking_uri=uri, **kwargs)


TWO = '[{ name = "narrow", set = ["model.filters=4"] }, { name = "wide" }]'


def study_folder(tmp_path: Path, variants: str = TWO) -> Path:
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "1-widths.toml").write_text(step_text(variants))
    return folder


def runs_of(uri: str, experiment: str = "jobs/1-widths") -> list:
    import mlflow

    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def figures(uri: str) -> dict:
    keys = ("test_accuracy", "test_loss", "best_val_loss")
    return {r.info.run_name: [r.data.metrics.get(k) for k in keys] for r in runs_of(uri)}


@pytest.mark.slow
def test_two_jobs_give_the_same_runs_and_figures_as_one(tmp_path, fmnist, empty_store):
    folder = study_folder(tmp_path)
    one, two = (empty_store(tmp_path / name / "mlflow.db") for name in ("one", "two"))
    lines = []
    run_study(folder, one, echo=lambda t: None)
    results, _ = run_study(folder, two, echo=lines.append, jobs=2)
    assert results[0].runs == 4
    assert sum("[run " in line for line in lines) == 4
    assert figures(one) == figures(two)
    assert len(figures(two)) == 4 and all(v[0] is not None for v in figures(two).values())
    # Resumes as with one job: nothing is left to train.
    again, _ = run_study(folder, two, echo=lambda t: None, jobs=2)
    assert again[0].skipped


@pytest.mark.slow
def test_four_jobs_write_one_sqlite_store(tmp_path, fmnist, empty_store):
    variants = (
        "["
        + ", ".join(f'{{ name = "w{w}", set = ["model.filters={w}"] }}' for w in (2, 3, 4, 5))
        + "]"
    )
    folder = study_folder(tmp_path, variants)
    uri = empty_store(tmp_path / "runs" / "mlflow.db")
    results, _ = run_study(folder, uri, echo=lambda t: None, jobs=4)
    runs = runs_of(uri)
    assert results[0].runs == 8 and len(runs) == 8
    assert {r.info.status for r in runs} == {"FINISHED"}
    import mlflow

    assert all(
        len(mlflow.MlflowClient(uri).get_metric_history(r.info.run_id, "val_loss")) == 2
        for r in runs
    )


@pytest.mark.slow
def test_ctrl_c_with_two_jobs_closes_every_run_and_a_rerun_resumes(tmp_path, fmnist, empty_store):
    variants = (
        '[{ name = "short", set = ["train.epochs=1"] }, '
        '{ name = "long", set = ["train.epochs=400"] }]'
    )
    folder = study_folder(tmp_path, variants)
    uri = empty_store(tmp_path / "runs" / "mlflow.db")
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    command = [
        sys.executable,
        "-m",
        "cnnlab.cli",
        "study",
        str(folder),
        "--jobs",
        "2",
        "--out",
        str(tmp_path / "report"),
    ]
    # The store's tables made before the study starts (empty_store): this test's polling client
    # and the study creating one SQLite store at the same moment would race through its schema
    # migrations.
    assert runs_of(uri) == []
    # A session of its own: the SIGINT below reaches the whole group, as a terminal's Ctrl-C does.
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            states = [r.info.status for r in runs_of(uri) if r.info.run_name.startswith("long")]
            if states.count("RUNNING") == 2:
                break
            time.sleep(0.5)
        else:
            proc.kill()
            pytest.fail(f"the two long runs never ran at once: {proc.communicate()}")
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "cnnlab: error: interrupted"
    status = {r.info.run_name: r.info.status for r in runs_of(uri)}
    assert status == {
        "short seed=1": "FINISHED",
        "short seed=2": "FINISHED",
        "long seed=1": "KILLED",
        "long seed=2": "KILLED",
    }
    # The rerun trains only the two cut runs (shortened here, which a new step hash would
    # refuse to count as the same runs; so the resume is checked on the plan instead).
    from cnnlab.study._plan import plan_step
    from cnnlab.study._steps import load_steps
    from cnnlab.tracking import Store

    (step,) = load_steps(folder)
    plan = plan_step(step, "jobs", False, None, Store(uri))
    assert sorted(j.name for j in plan.jobs) == ["long seed=1", "long seed=2"]


def fail_on_odd(n: int) -> int:
    if n % 2:
        raise ConfigError(f"odd {n}")
    time.sleep(0.2)
    return n * 10


def cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


@pytest.mark.slow
def test_a_failed_item_raises_its_error_after_the_running_ones_end():
    with WorkerPool(2) as pool:
        done = []
        with pytest.raises(ConfigError, match="odd 1"):
            for _, value in pool.run(fail_on_odd, [(0,), (1,), (2,), (4,)]):
                done.append(value)
    assert 0 in done and 40 not in done  # no item starts after the failure


def test_each_worker_gets_its_share_of_the_cores():
    assert core_shares(2, [0, 1, 2, 3, 4]) == [[0, 1, 2], [3, 4]]
    assert core_shares(3, [0, 1]) == [[0], [1], [0]]
    with WorkerPool(2) as pool:
        shares = dict(pool.run(os.sched_getaffinity, [(0,), (0,)]))
    if len(cores()) >= 2:
        assert len(shares[0] | shares[1]) == 2 and not shares[0] & shares[1]


def test_the_default_is_one_run_per_four_cores(monkeypatch):
    import cnnlab._pool as pool

    monkeypatch.setattr(pool, "usable_cores", lambda: list(range(2)))
    assert pool.default_jobs() == 1  # on 2 cores one run on both measured fastest
    monkeypatch.setattr(pool, "usable_cores", lambda: list(range(16)))
    assert pool.default_jobs() == 4


@pytest.mark.parametrize("command", ["study", "tune"])
def test_jobs_below_one_is_refused_in_one_line(command, capsys):
    from cnnlab.cli import main

    with pytest.raises(SystemExit) as stop:
        main([command, "configs/default.toml", "--jobs", "0"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--jobs: expected an integer >= 1, got '0'" in err[0]
