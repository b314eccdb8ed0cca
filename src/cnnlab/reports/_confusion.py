"""A run's test confusion matrix: read from the run (it logs one as it takes its test metrics),
or, for a run that logged none, its logged model evaluated again from its config and weights."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from cnnlab.reports._collect import RunRecord


def confusion_from_run(uri: str, run: RunRecord, data_dir: str | None = None):
    """(counts [true][predicted], class names) of the run's weights on the test set: as the
    run logged them when it took its test metrics, or for a run that logged none, its logged
    weights evaluated again."""
    logged = _logged(uri, run)
    if logged is not None:
        return logged
    return _evaluated(uri, run, data_dir)


def _logged(uri: str, run: RunRecord):
    import json

    from cnnlab.tracking import CONFUSION_ARTIFACT, Store

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = Store(uri).download_artifacts(run.run_id, CONFUSION_ARTIFACT, tmp)
        except FileNotFoundError:  # a run from before it was logged
            return None
        table = json.loads(Path(path).read_text(encoding="utf-8"))
    return table["matrix"], table["class_names"]


def _evaluated(uri: str, run: RunRecord, data_dir: str | None):
    from cnnlab.runner import load_splits, logged_model
    from cnnlab.tracking import Store
    from cnnlab.training import Normalize, predict

    cfg, model = logged_model(Store(uri), run.run_id)
    splits = load_splits(cfg, data_dir)
    classes = len(splits.class_names)
    predicted = predict(model, splits.test_x, Normalize(splits.mean, splits.std))
    matrix = torch.zeros(classes, classes, dtype=torch.long)
    matrix.index_put_((splits.test_y, predicted), torch.ones_like(predicted), accumulate=True)
    return matrix.tolist(), list(splits.class_names)
