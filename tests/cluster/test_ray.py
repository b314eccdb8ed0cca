"""A study and a search through a real Ray cluster on this machine: a head and a second node
(one CPU each, a small object store), the runs logging to a real `cnnlab server` (the
session's: each test reads only its own experiments there).

Bad input first (no cluster needed): an address nobody answers at, Ray missing, Hyperopt, a
malformed address; then what only a cluster of two nodes refuses (a local store, a search
without a shared storage); then the study and the search themselves, and a node killed under
a run.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import mlflow
import optuna
import pytest
import ray.cluster_utils

from cnnlab.api import run_study, tune
from cnnlab.cli import main
from cnnlab.config import load_config, override_text, to_toml
from cnnlab.tracking import store_file
from cnnlab.tracking.tags import RESUMED_TAG

STEP = """
[step]
kind = "train"
description = "Two widths."
seeds = [1, 2]
variants = [{{ name = "narrow", set = ["model.filters=4"] }}, {{ name = "wide" }}]
hypothesis = "wide beats narrow"
expect = {{ direction = "better", variant = "wide", reference = "narrow" }}

[data]
train_limit = 400
val_fraction = 0.05

[model]
filters = 8
hidden_units = [16]

[train]
epochs = {epochs}
eval_batch_size = 1000
threads = 1
"""
# A Hyperopt step: proposed one trial at a time, so its trials run on the driver.
SEARCH_STEP = """
[step]
kind = "tune"
description = "Two learning rates."

[data]
train_limit = 400
val_fraction = 0.05

[model]
filters = 4
hidden_units = [16]

[train]
epochs = 1
eval_batch_size = 1000

[search]
engine = "hyperopt"
trials = 2
seed = 1

[search.space]
"train.lr" = { dist = "loguniform", low = 1e-4, high = 3e-3 }
"""
SPACE = {"train.lr": {"dist": "loguniform", "low": 1e-4, "high": 3e-3}}
SEARCH = [
    "data.train_limit=400",
    "data.val_fraction=0.05",
    "model.filters=4",
    "model.hidden_units=[16]",
    "train.epochs=3",
    "train.eval_batch_size=1000",
    "train.threads=1",
    "tracking.log_weights=false",
    'tracking.experiment="ray-search"',
    "search.engine=optuna",
    "search.trials=6",
    "search.startup_trials=2",
    'search.pruner="median"',
    "search.pruner_startup=2",
]
# Node deaths are noticed in about 2 s rather than the default 30 (the fault test waits on it).
FAST_HEALTH = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 1000,
    "health_check_failure_threshold": 2,
}


def _node_args(cpus: int) -> dict:
    return {"num_cpus": cpus, "object_store_memory": 80 * 1024**2, "dashboard_port": None}


def _two_nodes():
    cluster = ray.cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={**_node_args(1), "_system_config": FAST_HEALTH},
    )
    worker = cluster.add_node(**_node_args(1))
    cluster.wait_for_nodes()
    return cluster, worker


@pytest.fixture(scope="module")
def two_nodes():
    cluster, _ = _two_nodes()
    yield cluster
    cluster.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _study(tmp_path: Path, epochs: int = 2, search: bool = False, name: str = "study") -> Path:
    """A study folder; its experiments are named `name`/<step>."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "1-widths.toml").write_text(STEP.format(epochs=epochs))
    if search:
        (folder / "2-search.toml").write_text(SEARCH_STEP)
    return folder


def _runs(uri: str, prefix: str = "") -> list:
    """Every run of the experiments at `uri` whose names start with `prefix`."""
    client = mlflow.MlflowClient(uri)
    found = [e for e in client.search_experiments() if e.name.startswith(prefix)]
    return [r for e in found for r in client.search_runs([e.experiment_id])]


# ------------------------------------------------------------------ bad input, no cluster


def test_an_address_nobody_answers_is_exit_8_within_seconds(uri, tmp_path, capsys):
    started = time.monotonic()
    argv = ["--ray", f"127.0.0.1:{_free_port()}", "--tracking-uri", uri]
    code = main(["study", str(_study(tmp_path)), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 8 and time.monotonic() - started < 15
    assert len(err.splitlines()) == 1 and "no Ray cluster answers there" in err
    assert not (tmp_path / "runs").exists()  # no store, so no run


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--ray", "somewhere"], "expected 'local' or a head's HOST:PORT"),
        (["--ray", "local", "--engine", "hyperopt"], 'need search.engine = "optuna"'),
    ],
)
def test_bad_input_on_tune_is_one_line_and_exit_2(argv, message, uri, tmp_path, capsys):
    config = tmp_path / "search.toml"
    config.write_text(to_toml(load_config(None, [*SEARCH, override_text("search.space", SPACE)])))
    assert main(["tune", str(config), *argv, "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "runs").exists()


def test_without_ray_the_option_says_how_to_install_it(uri, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert main(["study", str(_study(tmp_path)), "--ray", "local", "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith('Ray is not installed (expected it; pip install "cnnlab[ray]")')
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------ a cluster of two nodes


@pytest.mark.slow
def test_two_nodes_refuse_a_local_store_and_a_search_without_shared_storage(
    two_nodes, uri, tmp_path, capsys
):
    argv = ["--ray", two_nodes.address, "--tracking-uri", uri]
    assert main(["study", str(_study(tmp_path)), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "the cluster has 2 nodes" in err and "expected a tracking server" in err
    assert not _runs(uri)

    config = tmp_path / "search.toml"
    config.write_text(to_toml(load_config(None, [*SEARCH, override_text("search.space", SPACE)])))
    server = "http://127.0.0.1:9"  # never asked: the storage is refused first
    argv = ["--ray", two_nodes.address, "--tracking-uri", server]
    code = main(["tune", str(config), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "a search over 2 nodes needs a storage every node reaches" in err


@pytest.mark.slow
def test_a_study_on_two_nodes_records_what_one_machine_records(
    two_nodes, shared_tracking_server, uri
):
    """The same experiments, runs, tags and params as a local run of the study, and a report
    that judges its hypothesis. The Hyperopt step's trials run on the driver, one at a time."""
    server = shared_tracking_server.uri
    root = store_file(uri).parent.parent
    folder = _study(root, search=True, name="ray-layout")
    lines: list[str] = []
    spread = run_study(
        folder, tracking_uri=server, ray=two_nodes.address, out="r1", echo=lines.append
    )
    local = run_study(folder, tracking_uri=uri, jobs=1, out="r2", progress=False)

    def layout(tracking_uri):
        client = mlflow.MlflowClient(tracking_uri)
        found = []
        for run in _runs(tracking_uri, "ray-layout/"):
            tags = run.data.tags
            experiment = client.get_experiment(run.info.experiment_id).name
            nested = "mlflow.parentRunId" in tags
            key = (experiment, tags.get("cnnlab.variant"), tags.get("cnnlab.seed"), nested)
            found.append((*key, run.info.status, tuple(sorted(run.data.params))))
        return sorted(found, key=repr)

    assert layout(server) == layout(uri)
    assert len(layout(uri)) == 4 + 3 and {k[4] for k in layout(uri)} == {"FINISHED"}
    assert [s.runs for s in spread.steps] == [s.runs for s in local.steps] == [4, 2]
    assert "  its trials run here (Hyperopt, or no storage all nodes reach)" in lines
    report = Path(spread.report.markdown).read_text()
    assert "wide beats narrow" in report
    assert any(v in report for v in ("confirmed", "refuted", "inconclusive"))


@pytest.mark.slow
def test_a_search_on_two_nodes_runs_six_trials_that_report_every_epoch(
    two_nodes, shared_tracking_server, postgres_url, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    overrides = [*SEARCH, override_text("search.space", SPACE), f'search.storage="{postgres_url}"']
    seen = []
    result = tune(
        None,
        overrides,
        tracking_uri=shared_tracking_server.uri,
        ray=two_nodes.address,
        progress=False,
        on_trial=seen.append,
    )
    assert len(result.trials) == 6 and len(seen) == 6
    assert sorted(result.trials["number"]) == list(range(6))
    runs = _runs(shared_tracking_server.uri, "ray-search")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(parents) == 1 and len(children) == 6
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    # The pruner's evidence reached the shared storage from the workers: every epoch of
    # every trial that ran to the end, as the one-machine search reports it.
    studies = optuna.get_all_study_summaries(postgres_url)
    study = optuna.load_study(study_name=studies[0].study_name, storage=postgres_url)
    for trial in study.trials:
        assert trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert sorted(trial.intermediate_values) == [1, 2, 3]


@pytest.mark.slow
def test_a_node_killed_under_a_run_leaves_every_variant_and_seed_finished_once(
    shared_tracking_server, tmp_path
):
    server = shared_tracking_server.uri
    cluster, worker = _two_nodes()
    try:
        folder = _study(tmp_path, epochs=6, name="ray-fault")
        done: dict = {}
        study = threading.Thread(
            target=lambda: done.update(
                result=run_study(folder, tracking_uri=server, ray=cluster.address, progress=False)
            )
        )
        study.start()
        _wait_for_two_runs_past_an_epoch(server, "ray-fault/")
        cluster.remove_node(worker, allow_graceful=False)  # one of the two runs dies with it
        study.join(timeout=600)
        assert "result" in done
    finally:
        cluster.shutdown()
    runs = [r for r in _runs(server, "ray-fault/") if "cnnlab.variant" in r.data.tags]
    finished = [
        (r.data.tags["cnnlab.variant"], r.data.tags["cnnlab.seed"])
        for r in runs
        if r.info.status == "FINISHED"
    ]
    assert sorted(finished) == sorted({(v, s) for v in ("narrow", "wide") for s in ("1", "2")})
    assert all(r.info.status in ("FINISHED", "KILLED") for r in runs)
    # The lost run went on from its checkpoint on the node left (this machine's disk holds it),
    # or, without one, was closed KILLED and started again: no other way to four FINISHED.
    resumed = [r for r in runs if RESUMED_TAG in r.data.tags]
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert (len(runs), len(resumed), len(killed)) in ((4, 1, 0), (5, 0, 1))


def _wait_for_two_runs_past_an_epoch(uri: str, prefix: str = "") -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            running = [
                r
                for r in _runs(uri, prefix)
                if r.info.status == "RUNNING" and "val_loss" in r.data.metrics
            ]
        except Exception:  # the experiment is not there yet
            running = []
        if len(running) >= 2:
            return
        time.sleep(0.3)
    raise AssertionError("no two runs got past their first epoch")


@pytest.mark.slow
def test_the_overhead_benchmark_times_the_three_ways():
    import json
    import subprocess

    root = Path(__file__).resolve().parents[2]
    args = ["--rounds", "1", "--seeds", "1", "--train-limit", "200", "--epochs", "1"]
    out = subprocess.run(
        [sys.executable, "benchmarks/ray_overhead.py", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert record["benchmark"] == "ray_overhead" and record["runs"] == 2
    assert set(record["median_s"]) == {"jobs 1", "jobs 2", "ray local"}
    assert record["ratio_to_jobs_1"]["jobs 1"] == 1.0
    assert all(s > 0 for s in record["median_s"].values())


@pytest.mark.slow
def test_a_data_error_reaches_the_driver_and_ctrl_c_cancels_once_a_store_write_ends(uri, tmp_path):
    """On a `local` cluster: a task whose node lacks the data raises the one-line DataError
    on the driver (exit 3 there), and an interrupt of the driver cancels the running tasks,
    each once the tracking write it is in has ended."""
    from cnnlab.cluster import RayPool, connect
    from cnnlab.data import DataError, load_splits

    missing = load_config(None, ['data.dataset="folder"', 'data.path="/no/such/folder"'])
    with connect("local", uri) as cluster:
        pool = RayPool(cluster, lambda item: {"num_cpus": 1})
        with pytest.raises(DataError, match="/no/such/folder") as caught:
            list(pool.run(load_splits, [(missing,)]))
        assert len(str(caught.value).splitlines()) == 1

        started = time.monotonic()
        items = pool.run(_sleep_in_steps, [(600,), (600,)])
        with pytest.raises(KeyboardInterrupt):
            timer = threading.Timer(3, _interrupt_main)
            timer.start()
            next(items)
        assert time.monotonic() - started < 60  # cancelled, not slept out

        # The KeyboardInterrupt of a cancel goes through cnnlab's handler: inside a shielded
        # block (a tracking write) it waits for the block's end, so no commit is cut in half
        # and the run can still close KILLED.
        items = pool.run(_write_shielded, [(str(tmp_path), 4.0)])
        with pytest.raises(KeyboardInterrupt):
            watcher = threading.Thread(target=_interrupt_once_exists, args=(tmp_path / "begun",))
            watcher.start()
            next(items)
        watcher.join()
        assert (tmp_path / "whole").read_text() == "written"  # the write ended, then the cancel


def _write_shielded(folder: str, seconds: float) -> None:
    from cnnlab._signals import shielded

    with shielded():
        Path(folder, "begun").touch()
        time.sleep(seconds)  # a commit in progress: the cancel arrives here
        Path(folder, "whole").write_text("written")
    _sleep_in_steps(600)


def _interrupt_once_exists(path: Path) -> None:
    deadline = time.monotonic() + 120
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    _interrupt_main()


def _sleep_in_steps(seconds: float) -> None:
    """Python between short sleeps, as a training loop is: where a cancel lands."""
    for _ in range(int(seconds * 10)):
        time.sleep(0.1)


# The tasks unpickle this module's functions by value: the nodes do not import tests/.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _interrupt_main() -> None:
    import _thread

    _thread.interrupt_main()


@pytest.mark.slow
def test_ctrl_c_on_the_driver_ends_every_run_killed(uri, tmp_path):
    import signal
    import subprocess

    argv = [sys.executable, "-m", "cnnlab.cli", "study", str(_study(tmp_path, epochs=30))]
    driver = subprocess.Popen(
        [*argv, "--ray", "local", "--tracking-uri", uri, "--quiet"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_two_runs_past_an_epoch(uri)
        driver.send_signal(signal.SIGINT)
        code = driver.wait(timeout=180)
    finally:
        driver.kill()
    assert code == 130, driver.stderr.read()
    statuses = [r.info.status for r in _runs(uri) if "cnnlab.variant" in r.data.tags]
    assert statuses and set(statuses) == {"KILLED"}
