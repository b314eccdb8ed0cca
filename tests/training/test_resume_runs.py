"""Runs that keep: a tracked run saves a checkpoint every epoch and deletes it when it finishes
(or logs it, with tracking.log_checkpoint); a run cut short goes on in the same MLflow run, by
the API, by a study's rerun, and not from a checkpoint that is not its own."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

import cnnlab
from cnnlab.config import ConfigError, load_config
from cnnlab.runs import resume_or_train, train_run
from cnnlab.study._jobs import train_on_node, train_one
from cnnlab.study._plan import cut_runs
from cnnlab.tracking import Store, checkpoint_file, store_file
from cnnlab.tracking.tags import RESUMED_TAG, SEED_TAG, STEP_HASH_TAG, VARIANT_TAG
from cnnlab.training import Callback, load_checkpoint

# 600 validation images, not 6,000: each epoch's evaluation would cost more than its training.
EXACT = [
    "data.train_limit=1000",
    "data.val_fraction=0.01",
    "model.filters=8",
    "model.hidden_units=[32]",
    "train.epochs=3",
    "train.precision=fp32",
    "train.threads=1",
    "tracking.log_weights=false",
]


@pytest.fixture
def uri(uri, empty_store):
    """The fresh store of tests/conftest.py, its tables made."""
    return empty_store(store_file(uri))


class StopAt(Callback):
    """Raises `error` as epoch `epoch` starts: the run ends KILLED (an interrupt) or FAILED."""

    def __init__(self, epoch: int, error: BaseException):
        self.epoch, self.error = epoch, error

    def on_epoch_start(self, state):
        if state.epoch == self.epoch:
            raise self.error


def cut_run(cfg, uri, error: BaseException | None = None, **kwargs) -> str:
    """A run of cfg stopped as its epoch 2 starts (by Ctrl-C unless `error` is given); its id.
    Its checkpoint holds epoch 1."""
    error = error or KeyboardInterrupt()
    before = {r.info.run_id for r in all_runs(uri, cfg.tracking.experiment)}
    with pytest.raises(type(error)):
        train_run(cfg, tracking_uri=uri, callbacks=[StopAt(2, error)], **kwargs)
    (run_id,) = {r.info.run_id for r in all_runs(uri, cfg.tracking.experiment)} - before
    return run_id


def all_runs(uri: str, experiment: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def val_losses(uri: str, run_id: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in MlflowClient(uri).get_metric_history(run_id, "val_loss")]


@pytest.mark.slow
@pytest.mark.parametrize("error, status", [(KeyboardInterrupt(), "KILLED"), (OSError(), "FAILED")])
def test_the_api_resumes_a_cut_run_in_the_same_run(error, status, uri):
    cfg = load_config(None, EXACT)
    uncut = cnnlab.train(cfg, tracking_uri=uri, progress=False)
    run_id = cut_run(cfg, uri, error)
    client = MlflowClient(uri)
    assert client.get_run(run_id).info.status == status
    assert checkpoint_file(uri, run_id).is_file()  # a run cut short keeps it
    params = client.get_run(run_id).data.params
    resumed = cnnlab.train(resume=run_id, tracking_uri=uri, progress=False)
    run = client.get_run(run_id)
    assert resumed.run_id == run_id and run.info.status == "FINISHED"
    assert run.data.params == params  # not logged again
    assert val_losses(uri, run_id) == val_losses(uri, uncut.run_id)  # epochs 1-3, once each
    assert resumed.metrics["test_loss"] == uncut.metrics["test_loss"]
    assert resumed.metrics["test_accuracy"] == uncut.metrics["test_accuracy"]
    assert not checkpoint_file(uri, run_id).parent.exists()


def test_the_api_takes_no_config_with_resume(uri):
    for kwargs in ({"config": {"train": {"lr": 0.1}}}, {"overrides": ["train.lr=0.1"]}):
        with pytest.raises(ConfigError, match="expected no config, no overrides"):
            cnnlab.train(resume="abc", tracking_uri=uri, **kwargs)
    with pytest.raises(ConfigError, match="track=True"):
        cnnlab.train(resume="abc", tracking_uri=uri, track=False)


@pytest.mark.slow
def test_a_finished_run_logs_its_checkpoint_when_asked_and_deletes_it(uri, tmp_path):
    cfg = load_config(None, [*EXACT, "train.epochs=1", "tracking.log_checkpoint=true"])
    kept = train_run(cfg, tracking_uri=uri)
    dropped = train_run(load_config(None, [*EXACT, "train.epochs=1"]), tracking_uri=uri)
    for outcome in (kept, dropped):
        assert not checkpoint_file(uri, outcome.run_id).parent.exists()
    store = Store(uri)
    logged = store.download_artifacts(kept.run_id, "checkpoint/last.pt", str(tmp_path))
    saved = torch.load(logged, weights_only=True)
    assert saved["epoch"] == 1 and saved["identity"]["run"] == kept.run_id
    load_checkpoint(Path(logged), saved["identity"], kept.model)  # a whole one
    artifacts = [a.path for a in MlflowClient(uri).list_artifacts(dropped.run_id)]
    assert "config.toml" in artifacts and "checkpoint" not in artifacts


@pytest.mark.slow
def test_a_checkpoint_of_another_config_is_passed_over(uri, caplog):
    cfg = load_config(None, EXACT)
    run_id = cut_run(cfg, uri)
    other = load_config(None, [*EXACT, "train.lr=0.002"])
    with caplog.at_level(logging.WARNING):
        outcome = resume_or_train(other, run_id, tracking_uri=uri)
    assert outcome.run_id != run_id and outcome.result.epochs_run == 3
    assert (
        "written for config" in caplog.text and "starts again from its first epoch" in caplog.text
    )
    assert MlflowClient(uri).get_run(run_id).info.status == "KILLED"  # left as it was


@pytest.mark.slow
def test_a_study_rerun_goes_on_with_its_cut_run(uri):
    cfg = load_config(None, [*EXACT, 'tracking.experiment="study/step"'])
    tags = {STEP_HASH_TAG: "h1", VARIANT_TAG: "base", SEED_TAG: "42"}
    run_id = cut_run(cfg, uri, extra_tags=tags)
    cut = cut_runs(Store(uri), "study/step", "h1")
    assert cut == {("base", 42): run_id}
    done = train_one(cfg, uri, None, tags, cut[("base", 42)])
    assert done.run_id == run_id
    assert MlflowClient(uri).get_run(run_id).info.status == "FINISHED"
    assert [step for step, _ in val_losses(uri, run_id)] == [1, 2, 3]


def _elsewhere(uri: str, run_id: str) -> None:
    """As another machine sees the run: the checkpoint file this one wrote is not there."""
    import shutil

    shutil.rmtree(checkpoint_file(uri, run_id).parent)


@pytest.mark.slow
def test_an_uploaded_checkpoint_lets_another_machine_go_on_with_the_run(uri, tmp_path):
    cfg = load_config(None, [*EXACT, "tracking.upload_checkpoint=true"])
    uncut = train_run(cfg, tracking_uri=uri)
    run_id = cut_run(cfg, uri)
    logged = Store(uri).download_artifacts(run_id, "checkpoint/last.pt", str(tmp_path))
    # The last complete epoch's, uploaded as it was written.
    assert torch.load(logged, map_location="cpu", weights_only=True)["epoch"] == 1
    _elsewhere(uri, run_id)
    outcome = resume_or_train(cfg, run_id, tracking_uri=uri)
    run = MlflowClient(uri).get_run(run_id)
    assert outcome.run_id == run_id and run.info.status == "FINISHED"
    assert run.data.tags[RESUMED_TAG] == "1"
    assert val_losses(uri, run_id) == val_losses(uri, uncut.run_id)  # as if never cut
    # A study's task retried on another node finds the cut run and goes on with it too.
    tags = {STEP_HASH_TAG: "h2", VARIANT_TAG: "base", SEED_TAG: "42"}
    study_cfg = load_config(
        None, [*EXACT, "tracking.upload_checkpoint=true", 'tracking.experiment="s/two"']
    )
    cut = cut_run(study_cfg, uri, extra_tags=tags)
    _elsewhere(uri, cut)
    assert train_on_node(study_cfg, uri, None, tags).run_id == cut
    assert MlflowClient(uri).get_run(cut).data.tags[RESUMED_TAG] == "1"


@pytest.mark.slow
def test_without_an_upload_another_machine_starts_the_run_again(uri):
    cfg = load_config(None, EXACT)
    run_id = cut_run(cfg, uri)
    _elsewhere(uri, run_id)
    with pytest.raises(ConfigError, match="has no checkpoint .*tracking.upload_checkpoint"):
        cnnlab.train(resume=run_id, tracking_uri=uri, progress=False)
    outcome = resume_or_train(cfg, run_id, tracking_uri=uri)
    assert outcome.run_id != run_id and RESUMED_TAG not in outcome_tags(uri, outcome.run_id)
    # A study's retried task ends the cut run KILLED and trains the pair once more.
    tags = {STEP_HASH_TAG: "h3", VARIANT_TAG: "base", SEED_TAG: "42"}
    study_cfg = load_config(None, [*EXACT, 'tracking.experiment="s/three"'])
    cut = cut_run(study_cfg, uri, extra_tags=tags)
    _elsewhere(uri, cut)
    done = train_on_node(study_cfg, uri, None, tags)
    client = MlflowClient(uri)
    assert done.run_id != cut and client.get_run(cut).info.status == "KILLED"
    assert client.get_run(done.run_id).info.status == "FINISHED"


def outcome_tags(uri: str, run_id: str) -> dict:
    return MlflowClient(uri).get_run(run_id).data.tags


@pytest.mark.slow
def test_a_resumed_optuna_trial_reports_every_epoch_to_its_pruner(uri, monkeypatch):
    import optuna

    from cnnlab.config import override_text
    from cnnlab.search import _objective, run_search

    space = {"train.lr": {"dist": "loguniform", "low": 1e-3, "high": 3e-3}}
    cfg = load_config(
        None,
        [
            *EXACT,
            "search.engine=optuna",
            "search.pruner=median",
            "search.trials=1",
            override_text("search.space", space),
        ],
    )
    real = _objective.train_run

    def cut_once(cfg, **kwargs):  # Ctrl-C as the first trial's epoch 3 starts
        monkeypatch.setattr(_objective, "train_run", real)
        kwargs["callbacks"] = [*kwargs["callbacks"], StopAt(3, KeyboardInterrupt())]
        return real(cfg, **kwargs)

    monkeypatch.setattr(_objective, "train_run", cut_once)
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, tracking_uri=uri)
    result = run_search(cfg, tracking_uri=uri)
    (record,) = result.records
    run = MlflowClient(uri).get_run(record.run_id)
    assert run.data.tags["cnnlab.resumed_after_epoch"] == "2"
    assert [step for step, _ in val_losses(uri, record.run_id)] == [1, 2, 3]
    study = optuna.load_study(study_name="cnnlab", storage=f"sqlite:///{result.state_path}")
    cut, resumed = study.trials  # the cut one told FAIL, the rerun's a new one
    assert sorted(resumed.intermediate_values) == [1, 2, 3]  # epochs 1-2 caught up
    assert resumed.intermediate_values[3] == val_losses(uri, record.run_id)[2][1]
