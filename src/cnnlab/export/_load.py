"""The inverse of ModelLogger: a logged run's config and network, weights loaded (and, for an
older run that logged no confusion matrix, that network evaluated again on the test set)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from cnnlab.config import Config, ConfigError, load_config
from cnnlab.data import FOLDER, dataset_info
from cnnlab.models import create_model
from cnnlab.tracking import Store


def logged_model(store: Store, run_id: str) -> tuple[Config, Any]:
    """A logged run's config and its network with the logged weights (training mode, CPU).

    ConfigError when the run logged no config or no weights."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        try:
            cfg_path = store.download_artifacts(run_id, "config.toml", tmp)
            weights = store.download_artifacts(run_id, "model/state_dict.pt", tmp)
        except FileNotFoundError:  # a refusal or an outage is not "no model": it goes on up
            raise ConfigError(
                f"run {run_id!r}: no model to load (config.toml and model/state_dict.pt "
                "are logged by runs with tracking.log_weights = true)"
            ) from None
        cfg = load_config(Path(cfg_path))
        state = torch.load(weights, weights_only=True, map_location="cpu")
    input_shape, classes = logged_input(store, run_id, cfg)
    model = create_model(cfg.model, input_shape, classes)
    model.load_state_dict(state)
    return cfg, model


def logged_input(store: Store, run_id: str, cfg: Config) -> tuple[tuple[int, ...], int]:
    """The run's image shape (channels, height, width) and number of classes: a built-in
    dataset's are the registry's; a folder's are what the run logged (the folder need not exist
    where the model is loaded)."""
    if cfg.data.dataset != FOLDER:
        info = dataset_info(cfg.data)
        return info.input_shape, info.num_classes
    with tempfile.TemporaryDirectory() as tmp:
        path = store.download_artifacts(run_id, "architecture.json", tmp)
        with open(path) as f:
            logged = json.load(f)
    return tuple(logged["input_shape"]), logged["layers"][-1]["out_shape"][0]


def evaluated_confusion(store: Store, run_id: str, data_dir: str | None = None):
    """(counts [true][predicted], class names) of a logged run's weights evaluated again on its
    config's test set: for runs older than the matrix each run now logs with its test metrics."""
    import torch

    from cnnlab.data import load_splits
    from cnnlab.training import Normalize, predict

    cfg, model = logged_model(store, run_id)
    splits = load_splits(cfg, data_dir)
    classes = len(splits.class_names)
    predicted = predict(model, splits.test_x, Normalize(splits.mean, splits.std))
    matrix = torch.zeros(classes, classes, dtype=torch.long)
    matrix.index_put_((splits.test_y, predicted), torch.ones_like(predicted), accumulate=True)
    return matrix.tolist(), list(splits.class_names)
