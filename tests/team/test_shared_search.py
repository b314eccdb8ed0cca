"""One search spread over worker processes: a shared Optuna study, one MLflow parent run.

Three `cnnlab tune` workers join one study (PostgreSQL, or a journal file); one is SIGKILLed in
the middle of a trial and a fresh worker rejoins. In the end: exactly N finished trials, one
parent run, N finished child runs plus the killed one ended KILLED, no configuration twice.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import mlflow
import optuna
import pytest

from cnnlab.cli import main
from cnnlab.config import load_config, override_text, to_dict, to_toml
from cnnlab.search import parse_space
from cnnlab.search._layout import SearchLayout
from cnnlab.search._shared import SharedStudy, open_storage

TRIALS = 5
SPACE = {
    "model.filters": {"dist": "quniform", "low": 4, "high": 16, "q": 4, "int": True},
    "model.num_layers": {"dist": "intrange", "low": 1, "high": 2},
    "train.lr": {"dist": "loguniform", "low": 3e-4, "high": 3e-3},
}
TINY = [
    "data.train_limit=1000",
    "data.val_fraction=0.05",
    "model.filters=8",
    "model.padding=1",
    "model.hidden_units=[32]",
    "train.epochs=2",
    "train.eval_batch_size=1000",
    "train.threads=1",  # three workers share two cores
    "train.fused_stem=false",  # no timing of the native kernel against PyTorch's in each trial
    'tracking.experiment="team"',
    "tracking.log_weights=false",
    "tracking.log_model=false",  # saving an MLflow model costs seconds per trial
    "search.engine=optuna",
    "search.startup_trials=2",
    f"search.trials={TRIALS}",
    "search.heartbeat=1",  # a dead worker's trial is failed after 3 s of silence
]


def write_config(tmp_path) -> str:
    path = tmp_path / "search.toml"
    path.write_text(to_toml(load_config(None, [*TINY, override_text("search.space", SPACE)])))
    return str(path)


# The session's tracking server serves both: each search goes to its own experiment.
@pytest.mark.slow
def test_three_workers_on_postgres_one_killed(postgres_url, shared_tracking_server, tmp_path):
    run_workers(tmp_path, postgres_url, "s1", Tracking(shared_tracking_server.uri, "team-pg"))


@pytest.mark.slow
def test_three_workers_on_a_journal_file_one_killed(shared_tracking_server, tmp_path):
    storage = f"journal://{tmp_path}/studies/journal.log"
    run_workers(tmp_path, storage, "s1", Tracking(shared_tracking_server.uri, "team-journal"))


@dataclass(frozen=True)
class Tracking:
    uri: str
    experiment: str


def run_workers(tmp_path, storage: str, study: str, tracking: Tracking) -> None:
    uri, experiment = tracking.uri, tracking.experiment
    command = [sys.executable, "-m", "cnnlab.cli", "tune", write_config(tmp_path)]
    command += ["--set", f'tracking.experiment="{experiment}"']
    command += ["--storage", storage, "--study", study, "--tracking-uri", uri, "--quiet", "--json"]
    workers = [start(command, tmp_path / f"w{i}") for i in range(3)]
    try:
        victim = workers[0]
        number = wait_for_running_trial(victim, storage, study, tracking)
        victim.kill()
        victim.wait(timeout=30)
        workers.append(start(command, tmp_path / "w3"))  # a restarted worker rejoins
        outputs = [w.communicate(timeout=400) for w in workers[1:]]
    finally:
        for w in workers:
            w.kill()
    for w, (_, err) in zip(workers[1:], outputs):
        assert w.returncode == 0, err
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert len({r["parent_run_id"] for r in results}) == 1
    assert all(r["trials"] == TRIALS and r["study"] == study for r in results)

    trials = optuna.load_study(study_name=study, storage=open_study_storage(storage)).trials
    finished = [t for t in trials if "cnnlab.record" in t.user_attrs]
    assert len(finished) == TRIALS
    assert trials[number].state == optuna.trial.TrialState.FAIL
    assert "cnnlab.record" not in trials[number].user_attrs

    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("cnnlab.run_kind") == "search"]
    assert parent.info.run_id == results[0]["parent_run_id"]
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_total"] == TRIALS
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1
    done = [c for c in children if c.info.status == "FINISHED"]
    assert len(done) == TRIALS
    assert sorted(int(c.data.tags["cnnlab.trial"]) for c in done) == sorted(
        t.number for t in finished
    )
    (killed,) = [c for c in children if c.data.tags["cnnlab.trial"] == str(number)]
    assert killed.info.status == "KILLED" and killed.data.tags["cnnlab.worker_lost"] == "true"
    assert {c.info.status for c in children} <= {"FINISHED", "KILLED"}
    assert not [r for r in runs if r.info.status == "RUNNING"]
    configs = {tuple(c.data.params[k] for k in SPACE) for c in done}
    assert len(configs) == TRIALS, "a configuration ran twice"


def start(command: list[str], cwd) -> subprocess.Popen:
    cwd.mkdir()
    return subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_study_storage(storage: str):
    if storage.startswith("journal:///"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(storage.removeprefix("journal://")))
    return storage


def wait_for_running_trial(
    proc: subprocess.Popen, storage: str, study: str, tracking: Tracking
) -> int:
    """The number of the trial `proc` trains now, once its child run is RUNNING."""
    deadline = time.monotonic() + 240
    client = mlflow.MlflowClient(tracking.uri)
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            trials = optuna.load_study(study_name=study, storage=open_study_storage(storage))
            trials = trials.get_trials(states=[optuna.trial.TrialState.RUNNING])
            exp = client.get_experiment_by_name(tracking.experiment)
        except (KeyError, FileNotFoundError):  # no study yet
            trials, exp = [], None
        mine = [t for t in trials if t.user_attrs.get("cnnlab.worker", {}).get("pid") == proc.pid]
        if mine and exp:
            tag = f"tags.`cnnlab.trial` = '{mine[0].number}'"
            runs = client.search_runs([exp.experiment_id], filter_string=tag)
            if any(r.info.status == "RUNNING" for r in runs):
                return mine[0].number
        time.sleep(0.1)
    pytest.fail("the victim never trained a trial")


BAD = [
    (["--storage", "journal:///tmp/x.log"], "needs search.engine"),
    (["--engine", "optuna", "--storage", "redis://h/0"], "expected postgresql://"),
    (["--engine", "optuna", "--study", "s1"], "it needs search.storage"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[m for _, m in BAD])
def test_bad_storage_settings_are_one_line_exit_2(args, message, tmp_path, capsys):
    assert main(["tune", write_config(tmp_path), "--set", "search.engine=hyperopt", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_an_unreachable_storage_fails_fast_with_exit_6(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(tmp_path / "no-data"))  # fails before data
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/cnnlab"
    started = time.monotonic()
    assert main(["tune", write_config(tmp_path), "--storage", url, "--study", "s"]) == 6
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot use postgresql://postgres:***@127.0.0.1" in err, err
    assert "secret" not in err and not (tmp_path / "cnnlab-runs").exists()


@pytest.mark.slow
def test_a_worker_with_another_config_is_refused(tmp_path, capsys, monkeypatch, empty_store):
    monkeypatch.chdir(tmp_path)
    storage = ["--storage", f"sqlite:///{tmp_path}/studies.db", "--study", "s1"]
    args = ["tune", write_config(tmp_path), *storage, "--trials", "1", "--json"]
    tracking = ["--tracking-uri", empty_store(tmp_path / "mlflow.db")]
    assert main([*args, *tracking, "--set", "train.epochs=1"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["trials"] == out["succeeded"] == 1 and out["study"] == "s1"
    assert main([*args, *tracking, "--set", "train.epochs=2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "study 's1' holds another search" in err, err
    client = mlflow.MlflowClient(tracking[1])
    kind = "tags.`cnnlab.run_kind` = 'search'"
    exp = client.get_experiment_by_name("team").experiment_id
    assert [p.info.status for p in client.search_runs([exp], kind)] == ["FINISHED"]


@pytest.mark.slow
def test_a_configuration_is_never_tried_twice(tmp_path, capsys, monkeypatch, empty_store):
    # A space of one configuration: the second trial can only repeat the first.
    monkeypatch.chdir(tmp_path)
    space = override_text("search.space", {"train.lr": {"dist": "choice", "options": [1e-3]}})
    storage = ["--storage", f"journal://{tmp_path}/study.log", "--study", "one"]
    tracking = ["--tracking-uri", empty_store(tmp_path / "mlflow.db")]
    args = ["tune", write_config(tmp_path), "--set", space, "--trials", "2", *storage, *tracking]
    assert main([*args, "--set", "train.epochs=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "proposals in a row were tried already" in err, err
    client = mlflow.MlflowClient(tracking[1])
    runs = client.search_runs([client.get_experiment_by_name("team").experiment_id])
    assert sorted(r.data.tags.get("cnnlab.run_kind") for r in runs) == ["search", "trial"]
    assert not [r for r in runs if r.info.status == "RUNNING"]


@pytest.mark.slow
def test_heartbeats_fail_the_trial_of_a_silent_worker_elsewhere(tmp_path, empty_store):
    """The worker of another machine cannot be looked up by process id: its silence tells."""

    cfg = load_config(None, [*TINY, override_text("search.space", SPACE), 'search.study="hb"'])
    storage = open_storage(f"sqlite:///{tmp_path}/study.db", heartbeat=1)
    layout = SearchLayout(empty_store(tmp_path / "mlflow.db"), "team", "hb-search")
    space = parse_space(cfg.search.space, to_dict(cfg))
    shared = SharedStudy(space, cfg.search, storage, layout, epochs=1)
    assert shared.join(("search-hb", {}, {}, {})) is False  # it created the study and parent
    with pytest.warns(UserWarning, match="Heartbeat"):  # cnnlab asks outside optimize too
        trial = shared.study.ask()
    storage.record_heartbeat(trial._trial_id)
    beat = time.monotonic()
    trial.set_user_attr("cnnlab.worker", {"host": "elsewhere", "pid": 1, "start": "1"})
    tags = {"mlflow.parentRunId": layout.parent_id, "cnnlab.trial": str(trial.number)}
    child = layout.store.create_run(layout.experiment_id, tags=tags).info.run_id
    assert shared.trials()[0].state == optuna.trial.TrialState.RUNNING
    deadline = beat + 30
    while shared.trials()[0].state == optuna.trial.TrialState.RUNNING:
        assert time.monotonic() < deadline, "the silent worker's trial was never failed"
        time.sleep(0.2)
    assert shared.trials()[0].state == optuna.trial.TrialState.FAIL
    # Failed for its silence, not sooner: the grace period is 3 heartbeats of 1 s.
    assert time.monotonic() - beat >= 3
    run = layout.store.get_run(child)
    assert run.info.status == "KILLED" and run.data.tags["cnnlab.worker_lost"] == "true"


@pytest.mark.slow
def test_when_workers_race_for_the_last_slot_the_lower_trial_number_trains(tmp_path, empty_store):
    """Two workers may both see one free slot and ask a trial; the later number stands down.

    Trials 1 and 2 are asked by two workers while trial 0 is done and search.trials = 2: trial
    1 is counted and trains, trial 2 is told FAIL as surplus without training, whatever order
    the workers look in.
    """
    from cnnlab.search._optuna import RECORD_ATTR
    from cnnlab.search._shared import PARAMS_ATTR, SKIPPED_ATTR
    from cnnlab.search._workers import WORKER_ATTR, worker

    cfg = load_config(None, [*TINY, override_text("search.space", SPACE), "search.trials=2"])
    storage = open_storage(f"journal://{tmp_path}/study.log", heartbeat=1)
    layout = SearchLayout(empty_store(tmp_path / "mlflow.db"), "team", "race-search")
    space = parse_space(cfg.search.space, to_dict(cfg))
    shared = SharedStudy(space, cfg.search, storage, layout, epochs=1)
    shared.join(("search-race", {}, {}, {}))
    asked = []
    for number in range(3):
        trial = shared.study.ask()
        trial.set_user_attr(WORKER_ATTR, worker())  # alive: this very process
        trial.set_user_attr(PARAMS_ATTR, {"train.lr": number})
        asked.append(trial)
    asked[0].set_user_attr(RECORD_ATTR, {"number": 0})
    shared.study.tell(asked[0], 0.5)
    assert shared._verdict(2, {"train.lr": 2}) == "surplus"  # trial 1 runs and is counted
    assert shared._verdict(1, {"train.lr": 1}) == ""  # trial 2 running does not count for 1
    assert shared._verdict(1, {"train.lr": 0}) == "duplicate"  # trial 0's configuration

    def never(*args, **kwargs):
        raise AssertionError("a surplus trial trained")

    assert shared._one(never) == "surplus"  # a fourth worker's ask: trial 3, after 0, 1 and 2
    last = shared.study.get_trials(deepcopy=False)[-1]
    assert last.number == 3 and last.state == optuna.trial.TrialState.FAIL
    assert last.user_attrs[SKIPPED_ATTR] == "surplus"
