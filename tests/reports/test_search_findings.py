"""Search findings read back from MLflow: searches written run by run with MlflowClient, so
their outcomes are known exactly, and one real tiny Hyperopt search end to end."""

from __future__ import annotations

import json
import random

import matplotlib
import matplotlib.pyplot as plt
import mlflow
import pytest
from mlflow.entities import Metric, Param

from cnnlab.config import load_config, override_text
from cnnlab.reports import Table, collect
from cnnlab.reports._document import Figure
from cnnlab.reports._search_findings import search_findings
from cnnlab.search import dimensions_from_dict, run_search
from cnnlab.search._space import space_to_dict

SPACE = {
    # Rounding 30 to q=4 gives 32, past `high`: the report must still take such a value.
    "model.filters": {"dist": "quniform", "low": 6, "high": 30, "q": 4, "int": True},
    "train.lr": {"dist": "loguniform", "low": 1e-4, "high": 1e-1},
    "model.activation": {"dist": "choice", "options": ["relu", "gelu"]},
}


class SearchWriter:
    """A search's parent run and its children, laid out as cnnlab.search lays them out."""

    def __init__(self, client, experiment: str, objective: str = "val_loss", space: str = ""):
        self.client = client
        self.exp_id = client.create_experiment(experiment)
        self.objective = objective
        tags = {"cnnlab.run_kind": "search", "cnnlab.search_id": experiment}
        self.parent = self._run("search-test", tags, "FINISHED")
        params = {
            "search.space": space or json.dumps(SPACE),
            "search.objective": objective,
            "search.engine": "hyperopt",
        }
        client.log_batch(self.parent, params=[Param(k, v) for k, v in params.items()])
        self.number = 0

    def _run(self, name, tags, status, params=(), metrics=()) -> str:
        run_id = self.client.create_run(self.exp_id, run_name=name, tags=tags).info.run_id
        metric_list = [Metric(k, v, 0, 0) for k, v in metrics]
        self.client.log_batch(run_id, params=[Param(k, v) for k, v in params], metrics=metric_list)
        self.client.set_terminated(run_id, status=status)
        return run_id

    def child(self, params: dict, status: str, value: float | None = None, **tags: str) -> None:
        tags = {
            "mlflow.parentRunId": self.parent,
            "cnnlab.run_kind": "trial",
            "cnnlab.trial": str(self.number),
            **tags,
        }
        metrics = {} if value is None else {f"best_{self.objective}": value, "test_accuracy": 0.5}
        texts = [(k, str(v)) for k, v in params.items()]
        self._run(f"trial-{self.number:03d}", tags, status, params=texts, metrics=metrics.items())
        self.number += 1


def _trained(writer: SearchWriter, params: dict, value: float) -> None:
    writer.child({**params, "train.epochs": 1}, "FINISHED", value)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Experiments: `decided` (model.filters alone sets the loss), `accuracy` (the activation
    alone sets it), `one-trained`, `cut-space`, `plain` (no search). One store for the module:
    creating one costs seconds."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('findings')}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    rng = random.Random(0)
    decided = SearchWriter(client, "decided")
    for filters in (8, 32, 12, 28, 16, 24, 20, 8):
        params = {"model.filters": filters, "train.lr": 10 ** rng.uniform(-4, -1)}
        _trained(decided, {**params, "model.activation": rng.choice(["relu", "gelu"])}, filters)
    for _ in range(3):
        decided.child(
            {"model.filters": 32}, "FAILED", **{"cnnlab.fail_reason": "invalid_architecture"}
        )
    decided.child({"model.filters": 8}, "FAILED", **{"cnnlab.fail_reason": "error"})
    decided.child({"model.filters": 8}, "FINISHED", 9.0, **{"cnnlab.pruned": "true"})
    accuracy = SearchWriter(client, "accuracy", objective="val_accuracy")
    for i in range(6):
        activation = ("relu", "gelu")[i % 2]
        params = {"model.filters": 8 + 4 * i, "train.lr": 10 ** rng.uniform(-4, -1)}
        _trained(accuracy, {**params, "model.activation": activation}, 0.9 if i % 2 else 0.6)
    one = SearchWriter(client, "one-trained")
    one.child({"model.filters": 32}, "FAILED", **{"cnnlab.fail_reason": "invalid_architecture"})
    _trained(one, {"model.filters": 8, "train.lr": 0.01, "model.activation": "relu"}, 0.5)
    cut = SearchWriter(client, "cut-space", space=json.dumps(SPACE)[:40])  # a param cut short
    for filters in (8, 12):
        _trained(cut, {"model.filters": filters, "train.lr": 0.01}, filters)
    plain = client.create_experiment("plain")
    client.set_terminated(client.create_run(plain, run_name="alone").info.run_id)
    return uri


def _findings(uri: str, experiment: str) -> list:
    (record,) = collect(uri, [experiment])
    return search_findings(record, experiment)


def _texts(blocks) -> list[str]:
    return [b for b in blocks if isinstance(b, str)]


@pytest.mark.slow
def test_the_share_of_impossible_samples_with_every_outcome_counted(store):
    text = _findings(store, "decided")[0]
    assert text == (
        "Search `search-test` (hyperopt, objective `val_loss`). 13 samples drawn: 3 (23%) "
        "refused as impossible architectures before training, 8 trained, 1 failed, 1 pruned."
    )


@pytest.mark.slow
def test_the_parameter_that_sets_the_loss_is_the_most_important(store):
    blocks = _findings(store, "decided")
    (table,) = [b for b in blocks if isinstance(b, Table)]
    assert table.headers == ["parameter", "importance", "share"]
    importance = {row[0]: float(row[1]) for row in table.rows}
    assert set(importance) == set(SPACE)
    assert table.rows[0][0] == "model.filters"
    others = [v for key, v in importance.items() if key != "model.filters"]
    assert importance["model.filters"] > max(others)
    assert any("from the 8 trained trials" in text for text in _texts(blocks))
    assert _findings(store, "decided") == blocks  # seeded: the same store, the same report


def test_a_choice_can_be_what_matters_when_maximizing(store):
    blocks = _findings(store, "accuracy")
    (table,) = [b for b in blocks if isinstance(b, Table)]
    assert table.rows[0][0] == "model.activation"


def test_optunas_figures_as_svg_without_leaks(store):
    style = dict(matplotlib.rcParams)
    figures = [b for b in _findings(store, "decided") if isinstance(b, Figure)]
    names = [f.file for f in figures]
    assert names == ["decided-importance.svg", "decided-history.svg", "decided-parallel.svg"]
    for figure in figures:
        assert figure.svg.lstrip().startswith("<?xml") and "<svg" in figure.svg
    assert "model.filters" in figures[2].svg  # an axis of the parallel coordinates
    assert plt.get_fignums() == []
    assert dict(matplotlib.rcParams) == style  # Optuna's ggplot style stays in its figures


def test_one_trained_trial_says_importances_need_two(store):
    blocks = _findings(store, "one-trained")
    assert "2 samples drawn: 1 (50%) refused" in blocks[0]
    assert blocks[1].startswith("Parameter importances need at least two trained trials")
    assert not any(isinstance(b, Table) for b in blocks)
    files = [b.file for b in blocks if isinstance(b, Figure)]
    assert files == ["one-trained-history.svg", "one-trained-parallel.svg"]


def test_a_space_that_cannot_be_read_back_still_counts_and_plots(store):
    blocks = _findings(store, "cut-space")
    assert "2 samples drawn: 0 (0%) refused" in blocks[0]
    assert blocks[1].startswith("Parameter importances could not be computed")
    assert [b.file for b in blocks if isinstance(b, Figure)] == ["cut-space-history.svg"]


def test_an_experiment_without_a_search_has_no_findings(store):
    assert _findings(store, "plain") == []


def test_the_logged_space_reads_back_as_the_same_dimensions():
    dims = dimensions_from_dict(json.loads(json.dumps(SPACE)))
    assert [(d.key, d.dist, d.integer) for d in dims] == [
        ("model.filters", "quniform", True),
        ("train.lr", "loguniform", False),
        ("model.activation", "choice", False),
    ]
    assert dimensions_from_dict(space_to_dict(dims)) == dims


@pytest.mark.slow
def test_a_real_hyperopt_search(store):
    space = {
        "model.num_layers": {"dist": "choice", "options": [1, 8]},  # 8 layers cannot fit
        "train.lr": {"dist": "loguniform", "low": 3e-4, "high": 3e-3},
    }
    tiny = [
        "data.train_limit=1000",
        "data.val_fraction=0.05",
        "model.filters=8",
        "model.padding=1",
        "model.hidden_units=[32]",
        "train.epochs=1",
        "train.eval_batch_size=1000",
        "tracking.log_weights=false",
    ]
    search = ["search.engine=hyperopt", "search.algo=random", "search.trials=3"]
    cfg = load_config(
        None,
        [*tiny, *search, "search.count_invalid=false", 'tracking.experiment="real"']
        + [override_text("search.space", space)],
    )
    result = run_search(cfg, tracking_uri=store)
    refused = sum(r.reason == "invalid_architecture" for r in result.records)
    blocks = _findings(store, "real")
    drawn = len(result.records)
    assert refused > 0  # seeded: random draws of 8 layers, refused before training
    assert f"{drawn} samples drawn: {refused} ({refused / drawn:.0%}) refused" in blocks[0]
    assert "3 trained, 0 failed, 0 pruned." in blocks[0]
    (table,) = [b for b in blocks if isinstance(b, Table)]
    assert {row[0] for row in table.rows} <= {"model.num_layers", "train.lr"}
    files = [b.file for b in blocks if isinstance(b, Figure)]
    assert files == ["real-importance.svg", "real-history.svg", "real-parallel.svg"]
