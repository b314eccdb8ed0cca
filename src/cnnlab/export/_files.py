"""Take a run's model out of cnnlab: load it, write it as ONNX or a torch.export program, and
classify image files with it.

    model = run_model("3f2a...")                        # the run's MLflow model, standalone
    export_model("3f2a...", "onnx", "net.onnx")         # checked with onnxruntime
    predict_files("3f2a...", ["shoe.png"])              # [FilePrediction(...)]

Every exported file takes float32 pixels 0..255 shaped [N, C, H, W] (any N) and gives class
probabilities. It is written through a temporary file and renamed only once its outputs match
the PyTorch model's (top-1 equal, probabilities within 1e-4), so a failed export leaves nothing.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnlab.config import ConfigError
from cnnlab.export._mlflow_model import MODEL_ARTIFACT
from cnnlab.export._standalone import standalone

FORMATS = ("onnx", "pt2")
TOLERANCE = 1e-4  # largest difference in a probability between the export and PyTorch


@dataclass
class RunModel:
    run_id: str
    net: torch.nn.Module  # pixels 0..255 -> probabilities, fp32, CPU, eval mode
    class_names: list[str]
    input_shape: tuple[int, int, int]  # channels, height, width
    example: np.ndarray  # the logged input example: a few test images


@dataclass
class Exported:
    path: Path
    format: str
    images_checked: int
    max_difference: float  # largest |probability difference| against the PyTorch model


def run_model(run: str, *, tracking_uri: str | None = None, runs_dir: str = "cnnlab-runs"):
    """The run's network, standalone, from its logged config, weights and MLflow model's
    metadata; ConfigError (one line) for an unknown run or a run that logged no model."""
    from mlflow.models import Model

    from cnnlab.config import TrackingConfig
    from cnnlab.export._load import logged_model
    from cnnlab.tracking import open_store, resolve_uri, run_id_of, shown

    run_id = run_id_of(run)
    uri = resolve_uri(TrackingConfig(runs_dir=runs_dir), tracking_uri)
    store = open_store(uri)  # within seconds: exit 2 (no store), 5 (no answer), 7 (refused)
    if store.find_run(run_id) is None:
        raise ConfigError(f"run {run_id!r}: expected a run in {shown(uri)}, got no such run")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = store.download_artifacts(run_id, MODEL_ARTIFACT, tmp)
            logged = Model.load(local)
            example = np.asarray(logged.load_input_example(local), dtype=np.float32)
            meta = logged.metadata or {}
            classes, stats = list(meta["class_names"]), meta["pixel_stats"]
        except (FileNotFoundError, KeyError, TypeError):  # no model, or not one of cnnlab's
            raise ConfigError(
                f"run {run_id!r}: expected an MLflow model ({MODEL_ARTIFACT}/), got none "
                "(runs log one with tracking.log_model = true)"
            ) from None
    cfg, model = logged_model(store, run_id)
    shape = tuple(example.shape[1:])
    net = standalone(cfg.model, model, shape, len(classes), stats["mean"], stats["std"])
    return RunModel(run_id, net, classes, shape, example)


def export_model(
    run: str | RunModel,
    format: str,
    out: str | Path,
    *,
    images: np.ndarray | None = None,
    tracking_uri: str | None = None,
    runs_dir: str = "cnnlab-runs",
) -> Exported:
    """Writes the run's model to `out` as "onnx" (torch.onnx, checked with onnxruntime) or
    "pt2" (torch.export), after checking it against PyTorch on `images` (default: the logged
    input example)."""
    if format not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, got {format!r}")
    out = Path(out)
    if not out.parent.is_dir():
        raise ConfigError(f"--out: expected a file in an existing folder, got {out}")
    model = (
        run
        if isinstance(run, RunModel)
        else run_model(run, tracking_uri=tracking_uri, runs_dir=runs_dir)
    )
    x = model.example if images is None else images.astype(np.float32)
    # The part keeps the format's suffix: torch.export reads back only a file named *.pt2.
    fd, part = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=f".part.{format}", dir=out.parent)
    os.close(fd)
    try:
        run_export = _onnx if format == "onnx" else _pt2
        exported = run_export(model, Path(part), x)
        with torch.no_grad():
            expected = model.net(torch.from_numpy(x)).numpy()
        difference = _compare(expected, exported, format)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(part, 0o666 & ~umask)  # as any new file; mkstemp made it private
        os.replace(part, out)
    finally:
        Path(part).unlink(missing_ok=True)
    return Exported(out, format, len(x), difference)


def _onnx(model: RunModel, path: Path, x: np.ndarray) -> np.ndarray:
    try:
        import onnxruntime
        import onnxscript  # noqa: F401  torch.onnx's exporter needs it
    except ImportError:
        raise ConfigError(
            "--format onnx: expected onnxscript and onnxruntime installed "
            "(pip install 'cnnlab[export]')"
        ) from None
    batch = torch.export.Dim("batch", min=1)
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)  # it warns of every torchvision op it cannot register
    try:
        program = torch.onnx.export(
            model.net,
            (torch.from_numpy(model.example),),
            dynamo=True,
            dynamic_shapes=({0: batch},),
            input_names=["pixels"],
            output_names=["probabilities"],
            verbose=False,
        )
    finally:
        onnx_log.setLevel(level)
    program.save(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"pixels": x})[0]


def _pt2(model: RunModel, path: Path, x: np.ndarray) -> np.ndarray:
    batch = torch.export.Dim("batch", min=1)
    example = torch.from_numpy(model.example)
    program = torch.export.export(model.net, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    loaded = torch.export.load(str(path)).module()
    with torch.no_grad():
        return loaded(torch.from_numpy(x)).numpy()


def _compare(expected: np.ndarray, got: np.ndarray, format: str) -> float:
    difference = float(np.abs(expected - got).max()) if len(expected) else 0.0
    same_top1 = bool((expected.argmax(1) == got.argmax(1)).all())
    if difference > TOLERANCE or not same_top1:
        raise RuntimeError(
            f"export {format}: outputs differ from PyTorch's (max {difference:.2e}, top-1 "
            f"{'equal' if same_top1 else 'different'})"
        )
    return difference
