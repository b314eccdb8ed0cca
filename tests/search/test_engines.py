"""Both engines, in process: one parent run, nested child runs, failures that do not stop it."""

from __future__ import annotations

import dataclasses

import pytest
from search_helpers import all_runs, split_runs

import cnnlab.search._objective as objective_module
from cnnlab.config import SearchConfig, load_config
from cnnlab.search import run_search, trial_config
from cnnlab.training import Callback

ENGINES = {
    "hyperopt": ["search.engine=hyperopt", "search.trials=3"],
    # Median pruning after one finished trial: on these tiny runs some trials stop at epoch 1.
    "optuna": [
        "search.engine=optuna",
        "search.trials=4",
        "search.pruner=median",
        "search.pruner_startup=1",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_a_search_is_one_parent_with_a_nested_run_per_trial(engine, search_cfg, store):
    cfg = search_cfg(*ENGINES[engine])
    n = cfg.search.trials
    result = run_search(cfg, tracking_uri=store)
    assert len(result.records) == n and [r.number for r in result.records] == list(range(n))
    (parent,), children = split_runs(all_runs(store, cfg.tracking.experiment))
    assert parent.info.run_id == result.parent_run_id and parent.info.status == "FINISHED"
    assert parent.data.params["search.engine"] == engine
    assert parent.data.params["search.seed"] == "42"
    assert parent.data.params["search.trials"] == str(n)
    assert '"model.filters"' in parent.data.params["search.space"]
    counts = result.counts
    assert parent.data.metrics["trials_total"] == n
    assert parent.data.metrics["trials_completed"] == counts["ok"] >= 1
    assert parent.data.metrics["trials_pruned"] == counts["pruned"]
    assert parent.data.metrics["best_value"] == result.best.value
    assert parent.data.tags["best_model.filters"] == str(result.best.params["model.filters"])
    assert len(children) == n
    by_trial = {int(c.data.tags["cnnlab.trial"]): c for c in children}
    for record in result.records:
        child = by_trial[record.number]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED" and child.info.run_id == record.run_id
        assert child.data.params["model.filters"] == str(record.params["model.filters"])
        assert child.data.params["model.num_layers"] == str(record.params["model.num_layers"])
        assert "arch.total_params" in child.data.params and "val_loss" in child.data.metrics
        assert child.data.metrics["best_val_loss"] == pytest.approx(record.value)
        assert child.data.metrics["epochs_run"] == record.epochs
        pruned = child.data.tags.get("cnnlab.pruned") == "true"
        assert pruned == (record.status == "pruned")
        assert ("test_accuracy" in child.data.metrics) != pruned  # a pruned trial is not tested
    if engine == "optuna":
        assert counts["pruned"] >= 1
        assert all(r.epochs == 1 for r in result.records if r.status == "pruned")
    _best_config_retrains_the_best_trial(cfg, result)
    _rerunning_a_finished_search_changes_nothing(cfg, store, result)


def _best_config_retrains_the_best_trial(cfg, result):
    best = load_config(result.best_config_path)
    expected = dataclasses.replace(trial_config(cfg, result.best.params), search=SearchConfig())
    assert best == expected
    assert best.model.filters == result.best.params["model.filters"]


def _rerunning_a_finished_search_changes_nothing(cfg, store, result):
    again = run_search(cfg, tracking_uri=store)
    assert again.resumed and again.parent_run_id == result.parent_run_id
    assert [r.params for r in again.records] == [r.params for r in result.records]
    parents, children = split_runs(all_runs(store, cfg.tracking.experiment))
    assert len(parents) == 1 and len(children) == cfg.search.trials


class _Explode(Callback):
    def on_epoch_end(self, state, metrics):
        raise RuntimeError("injected failure")


@pytest.mark.slow
def test_failing_and_diverging_trials_are_recorded_and_the_search_goes_on(
    search_cfg, store, monkeypatch
):
    """Trial 1 raises inside training; trial 2 trains with an absurd learning rate (NaN)."""
    real = objective_module.train_run

    def train_run(cfg, **kw):
        trial = kw["extra_tags"]["cnnlab.trial"]
        if trial == "1":
            kw["callbacks"] = [*kw["callbacks"], _Explode()]
        if trial == "2":
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr=1e9))
        return real(cfg, **kw)

    monkeypatch.setattr(objective_module, "train_run", train_run)
    cfg = search_cfg("search.trials=3", "train.epochs=1")
    result = run_search(cfg, tracking_uri=store)
    statuses = [(r.status, r.reason) for r in result.records]
    assert statuses[1] == ("failed", "error") and statuses[2] == ("failed", "diverged")
    assert statuses[0][0] == "ok"
    assert "injected failure" in result.records[1].error
    (parent,), children = split_runs(all_runs(store, cfg.tracking.experiment))
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_failed"] == 2
    by_trial = {c.data.tags["cnnlab.trial"]: c for c in children}
    assert by_trial["1"].info.status == "FAILED"
    assert by_trial["1"].data.tags["cnnlab.fail_reason"] == "error"
    assert "injected failure" in by_trial["1"].data.tags["cnnlab.error"]
    assert by_trial["2"].info.status == "FAILED"
    assert by_trial["2"].data.tags["cnnlab.fail_reason"] == "diverged"


@pytest.mark.slow
def test_an_impossible_architecture_fails_in_milliseconds_untrained(search_cfg, store):
    space = {"model.num_layers": {"dist": "choice", "options": [1, 8, 9]}}
    cfg = search_cfg("search.trials=3", "search.algo=random", "train.epochs=1", space=space)
    result = run_search(cfg, tracking_uri=store)
    refused = [r for r in result.records if r.params["model.num_layers"] > 1]
    assert refused, "the seed should sample 8 or 9 layers at least once in 3 trials"
    for record in refused:
        assert record.status == "failed" and record.reason == "invalid_architecture"
        assert record.epochs == 0 and record.seconds < 1.0
    children = {c.info.run_id: c for c in split_runs(all_runs(store, cfg.tracking.experiment))[1]}
    for record in refused:
        child = children[record.run_id]
        assert child.info.status == "FAILED"
        assert child.data.tags["cnnlab.fail_reason"] == "invalid_architecture"
        assert "val_loss" not in child.data.metrics


@pytest.mark.slow
def test_invalid_samples_need_not_count_as_trials(search_cfg, store):
    space = {"model.num_layers": {"dist": "choice", "options": [1, 8, 9]}}
    cfg = search_cfg(
        "search.trials=2",
        "search.algo=random",
        "train.epochs=1",
        "search.count_invalid=false",
        space=space,
    )
    result = run_search(cfg, tracking_uri=store)
    trained = [r for r in result.records if r.reason != "invalid_architecture"]
    assert len(trained) == 2 and all(r.params["model.num_layers"] == 1 for r in trained)
    assert len(result.records) > 2  # the impossible draws are still recorded as failed runs
