"""`tune --jobs N`: trials in worker processes on one Optuna study, one parent run, resumable."""

import mlflow
import pytest

import cnnlab
from cnnlab.config import ConfigError

TINY = {
    "data": {"train_limit": 500, "val_fraction": 0.01},
    "model": {"filters": 8, "hidden_units": [16]},
    # No timing of the native kernel against PyTorch's ops in each worker, for each width.
    "train": {"epochs": 1, "eval_batch_size": 1000, "threads": 1, "fused_stem": False},
    "search": {
        "engine": "optuna",
        "trials": 4,
        "space": {
            "model.filters": {"dist": "choice", "options": [4, 6, 8, 12]},
            "train.lr": {"dist": "loguniform", "low": 1e-3, "high": 1e-2},
        },
    },
}


@pytest.mark.slow
def test_two_jobs_run_every_trial_once_under_one_parent_and_resume(
    uri, tmp_path, fmnist, made_store
):
    made_store(uri)
    seen = []
    result = cnnlab.tune(TINY, tracking_uri=uri, progress=False, on_trial=seen.append, jobs=2)
    trials = result.trials
    assert len(trials) == 4 and (trials["state"] == "ok").all()
    assert sorted(r.number for r in seen) == [0, 1, 2, 3]  # reported here, as workers ended them
    client = mlflow.MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    children = client.search_runs(
        [parent.info.experiment_id],
        f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'",
    )
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}
    journals = list((tmp_path / "runs" / "searches").glob("*.jobs.journal"))
    assert len(journals) == 1

    again = cnnlab.tune(TINY, tracking_uri=uri, progress=False, jobs=2)
    assert again.parent_run_id == result.parent_run_id and len(again.trials) == 4
    assert len(client.search_runs([parent.info.experiment_id])) == 5  # no trial ran twice


def test_hyperopt_cannot_run_trials_at_once_and_nothing_is_made(uri, tmp_path):
    cfg = {**TINY, "search": {**TINY["search"], "engine": "hyperopt"}}
    with pytest.raises(ConfigError, match='--jobs 2: trials at once need search.engine = "optuna"'):
        cnnlab.tune(cfg, tracking_uri=uri, progress=False, jobs=2)
    assert not (tmp_path / "runs" / "searches").exists()
