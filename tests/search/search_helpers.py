"""Tiny searches: 1,000 training images, small CNNs, one or two epochs, a few trials."""

from __future__ import annotations

import mlflow

from cnnlab.config import load_config, override_text

TINY_SEARCH = [
    "data.train_limit=1000",
    "data.val_fraction=0.05",
    "model.filters=8",
    "model.padding=1",
    "model.hidden_units=[32]",
    "train.epochs=2",
    "train.eval_batch_size=1000",
    'tracking.experiment="search-test"',
    "tracking.log_weights=false",
    "search.startup_trials=2",
]

# A space of small, valid CNNs: every trial trains.
SMALL_SPACE = {
    "model.filters": {"dist": "quniform", "low": 4, "high": 12, "q": 4, "int": True},
    "model.num_layers": {"dist": "intrange", "low": 1, "high": 2},
    "train.lr": {"dist": "loguniform", "low": 3e-4, "high": 3e-3},
}


def space_override(space: dict) -> str:
    return override_text("search.space", space)


def all_runs(uri: str, experiment: str = "search-test"):
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


def split_runs(runs):
    parents = [r for r in runs if r.data.tags.get("cnnlab.run_kind") == "search"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def write_config(path, cfg_overrides: list[str], space: dict) -> str:
    """A TOML file holding the tiny search, for subprocess runs of the CLI."""
    from cnnlab.config import to_toml

    cfg = load_config(None, [*TINY_SEARCH, space_override(space), *cfg_overrides])
    path.write_text(to_toml(cfg))
    return str(path)
