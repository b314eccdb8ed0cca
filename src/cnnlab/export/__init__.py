"""Models out of cnnlab: each run's MLflow model, export to ONNX or torch.export, predictions on
image files, and the MLflow Model Registry.

    from cnnlab.export import export_model, predict_files, register_run
    export_model(run_id, "onnx", "net.onnx")
    [p.class_name for p in predict_files(run_id, ["shoe.png"])]
"""

from cnnlab.export._files import FORMATS, TOLERANCE, Exported, RunModel, export_model, run_model
from cnnlab.export._load import evaluated_confusion, logged_input, logged_model
from cnnlab.export._mlflow_model import (
    MODEL_ARTIFACT,
    ModelLogger,
    logged_pixel_stats,
    save_mlflow_model,
)
from cnnlab.export._predict import FilePrediction, predict_files, read_images
from cnnlab.export._register import Registered, register_best, register_run
from cnnlab.export._standalone import plain, standalone

__all__ = [
    "FORMATS",
    "MODEL_ARTIFACT",
    "TOLERANCE",
    "Exported",
    "FilePrediction",
    "ModelLogger",
    "Registered",
    "RunModel",
    "evaluated_confusion",
    "export_model",
    "logged_input",
    "logged_model",
    "logged_pixel_stats",
    "plain",
    "predict_files",
    "read_images",
    "register_best",
    "register_run",
    "run_model",
    "save_mlflow_model",
    "standalone",
]
