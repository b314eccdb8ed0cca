"""Each run's trained network as an MLflow model (`mlflow_model/` among the run's artifacts).

    mlflow.pyfunc.load_model(f"runs:/{run_id}/mlflow_model").predict(images)  # probabilities

MLflow's PyTorch flavour with a signature (float32 pixels 0..255, [N, C, H, W] -> [N, classes])
and an input example (a few test images); the class names are in the model's metadata. The
network is `standalone`: loading it needs torch, not cnnlab.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.export._standalone import standalone
from cnnlab.training import Callback

MODEL_ARTIFACT = "mlflow_model"  # the run's artifact folder holding the MLflow model
_EXAMPLES = 4  # test images in the input example


class ModelLogger(Callback):
    """Logs the trained network as an MLflow model into the tracker's run as the fit ends.

    Placed before the tracker among the callbacks, so the run is still open."""

    def __init__(self, tracker: Any, model_cfg: Any, splits: Any):
        self.tracker = tracker
        self.model_cfg = model_cfg
        self.input_shape = tuple(splits.input_shape)
        self.class_names = list(splits.class_names)
        self.mean, self.std = splits.mean, splits.std
        self.example = splits.test_x[:_EXAMPLES].float().numpy()

    def on_fit_end(self, state: Any, result: Any) -> None:
        if self.tracker.run_id is None or state.skip_test:  # untracked, or a pruned trial
            return
        net = standalone(
            self.model_cfg,
            state.model,
            self.input_shape,
            len(self.class_names),
            self.mean,
            self.std,
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / MODEL_ARTIFACT
            stats = {"mean": list(self.mean), "std": list(self.std)}
            save_mlflow_model(net, path, self.example, self.class_names, stats)
            self.tracker.log_folder(path, MODEL_ARTIFACT)


def logged_pixel_stats(store: Any, run_id: str) -> tuple[tuple[float, ...], ...] | None:
    """The per-channel (mean, std) a run's MLflow model folds in, from its MLmodel file (no
    data, no weights); None when the run logged no MLflow model."""
    from mlflow.models import Model

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = store.download_artifacts(run_id, f"{MODEL_ARTIFACT}/MLmodel", tmp)
        except OSError:  # FileNotFoundError: tracking.log_model was false
            return None
        stats = (Model.load(path).metadata or {}).get("pixel_stats")
    return (tuple(stats["mean"]), tuple(stats["std"])) if stats else None


def save_mlflow_model(
    net: torch.nn.Module, path: Path, example: np.ndarray, class_names, stats: dict
) -> None:
    """MLflow's PyTorch format in `path`. Requirements are named rather than inferred: inferring
    them imports the model in a subprocess, seconds per run."""
    import mlflow.pytorch
    from mlflow.models import infer_signature

    with torch.no_grad():
        output = net(torch.from_numpy(example)).numpy()
    mlflow.pytorch.save_model(
        net,
        str(path),
        # A torch.export program, not a pickle: loading it runs no code from the store. Tracing
        # costs about 2 s the first time in a process, then 0.2 s a run.
        serialization_format="pt2",
        signature=infer_signature(example, output),
        input_example=example,
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        metadata={
            "class_names": list(class_names),
            "pixel_stats": stats,  # the training split's, per channel, that the model folds in
            "input": "float32 pixel values 0..255, shape [N, C, H, W]",
            "output": "class probabilities, shape [N, classes], in class_names order",
        },
    )
