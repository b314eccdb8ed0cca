"""Evaluate a run's logged model on the test set, from its logged config and weights."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from cnnlab.config import load_config
from cnnlab.reports._collect import RunRecord


def confusion_from_run(uri: str, run: RunRecord, data_dir: str | None = None):
    """(10x10 counts [true][predicted], class names) of the run's weights on the test set."""
    from cnnlab.models import create_model
    from cnnlab.runner import DATASET_SHAPES, load_splits
    from cnnlab.tracking import client
    from cnnlab.training import Normalize, predict

    with tempfile.TemporaryDirectory() as tmp:
        mlflow_client = client(uri)
        cfg_path = mlflow_client.download_artifacts(run.run_id, "config.toml", tmp)
        weights = mlflow_client.download_artifacts(run.run_id, "model/state_dict.pt", tmp)
        cfg = load_config(Path(cfg_path))
        state = torch.load(weights, weights_only=True, map_location="cpu")
    input_shape, classes = DATASET_SHAPES[cfg.data.dataset]
    model = create_model(cfg.model, input_shape, classes)
    model.load_state_dict(state)
    splits = load_splits(cfg, data_dir)
    predicted = predict(model, splits.test_x, Normalize(splits.mean, splits.std))
    matrix = torch.zeros(classes, classes, dtype=torch.long)
    matrix.index_put_((splits.test_y, predicted), torch.ones_like(predicted), accumulate=True)
    return matrix.tolist(), list(splits.class_names)
