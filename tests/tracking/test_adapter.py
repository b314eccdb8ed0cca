"""Store, the one way cnnlab reaches MLflow, against a real embedded store."""

from pathlib import Path

import mlflow
import pytest

from cnnlab.config import ConfigError
from cnnlab.tracking import Store, default_uri, run_id_of
from cnnlab.tracking._adapter import PARAM_LIMIT


@pytest.fixture
def store(tmp_path):
    return Store(default_uri(tmp_path / "runs"))


@pytest.mark.slow
def test_an_experiment_is_created_once_restored_and_tagged(store, tmp_path):
    assert store.find_experiment("e") is None
    exp_id = store.ensure_experiment("e")
    assert store.ensure_experiment("e") == exp_id
    assert store.experiment(exp_id).artifact_location.startswith(
        (tmp_path / "runs" / "artifacts").as_uri()
    )
    mlflow.MlflowClient(store.uri).delete_experiment(exp_id)
    assert store.ensure_experiment("e") == exp_id
    assert store.find_experiment("e").lifecycle_stage == "active"
    store.set_experiment_tag(exp_id, "k", "v")
    assert store.experiment(exp_id).tags["k"] == "v"
    store.delete_experiment_tag(exp_id, "k")
    assert "k" not in store.experiment(exp_id).tags
    assert {e.name for e in store.experiments()} == {"Default", "e"}


@pytest.mark.slow
def test_whole_dicts_are_logged_within_mlflows_limits(store, tmp_path):
    exp_id = store.ensure_experiment("e")
    run_id = store.create_run(exp_id, "r", {"a": "1"}).info.run_id
    params = {f"p{i:03d}": i for i in range(250)}
    params.update({"list": [32, 16], "flag": True, "long": "x" * (PARAM_LIMIT + 10)})
    store.log_params(run_id, params)
    store.set_tags(run_id, {f"t{i:03d}": str(i) for i in range(150)})
    store.log_metrics(run_id, {"loss": 0.5}, step=2)
    store.log_metrics(run_id, {"loss": 0.7}, step=1)
    store.log_texts(run_id, {"note.txt": "text"})
    store.terminate(run_id, "FAILED")
    run = store.get_run(run_id)
    assert len(run.data.params) == 253 and run.data.params["p249"] == "249"
    assert run.data.params["list"] == "[32, 16]" and run.data.params["flag"] == "true"
    assert run.data.params["long"] == "x" * PARAM_LIMIT
    assert run.data.tags["t149"] == "149" and run.data.tags["a"] == "1"
    assert store.metric_history(run_id, "loss") == [(1, 0.7), (2, 0.5)]
    assert run.info.status == "FAILED" and run.info.run_name == "r"
    path = store.download_artifacts(run_id, "note.txt", str(tmp_path))
    assert Path(path).read_text(encoding="utf-8") == "text"
    store.reopen(run_id)
    assert store.get_run(run_id).info.status == "RUNNING"


@pytest.mark.slow
def test_runs_are_found_by_filter_in_order_and_nested(store):
    exp_id = store.ensure_experiment("e")
    parent = store.create_run(exp_id, "parent", {"kind": "search"}).info.run_id
    children = [
        store.create_run(exp_id, f"c{i}", {"kind": "trial"}, parent_id=parent).info.run_id
        for i in range(3)
    ]
    found = store.search_runs([exp_id], "tags.kind = 'trial'", ["attributes.run_name DESC"])
    assert [r.info.run_id for r in found] == children[::-1]
    assert {r.data.tags["mlflow.parentRunId"] for r in found} == {parent}
    store.delete_run(children[0])
    assert len(store.search_runs([exp_id], f"tags.`mlflow.parentRunId` = '{parent}'")) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["it's", 'say "hi"', "both ' and \""])
def test_model_versions_are_found_for_a_name_with_quotes(store, tmp_path, name):
    exp_id = store.ensure_experiment("e")
    run_id = store.create_run(exp_id, "r").info.run_id
    for model in (name, "it", "say "):  # look-alikes that a broken filter would match or mix up
        store.register_version(model, run_id, "model", {"who": model})
    found = store.model_versions(name)
    assert [v.tags["who"] for v in found] == [name]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("3f2a", "3f2a"),
        (" runs:/3f2a ", "3f2a"),
        ("runs:/3f2a/mlflow_model", "3f2a"),
        ("runs:///3f2a/model/state_dict.pt", "3f2a"),
    ],
)
def test_a_run_reference_gives_its_run_id(reference, expected):
    assert run_id_of(reference) == expected


@pytest.mark.parametrize("reference", ["", "runs:/", "models:/net/1", "3f2a/mlflow_model", "a b"])
def test_a_malformed_run_reference_is_one_line(reference):
    with pytest.raises(ConfigError, match="expected a run id or runs:/<run id>"):
        run_id_of(reference)
