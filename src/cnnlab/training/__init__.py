"""Training: the epoch loop, optimizers and schedulers by name, callbacks.

result = fit(model, splits, cfg.train, callbacks=[ProgressBar()])
"""

from cnnlab.training._batches import BatchStream, Normalize
from cnnlab.training._callbacks import (
    Callback,
    EarlyStopping,
    EpochBar,
    EpochMetrics,
    ProgressBar,
    TrainState,
    selection_loss,
)
from cnnlab.training._ema import WeightAverage
from cnnlab.training._fast import Augment, Runtime, cpu_has_native_bf16, resolve_precision
from cnnlab.training._loop import (
    FitResult,
    TrainingDiverged,
    evaluate,
    fit,
    pick_device,
    predict,
    seed_everything,
)
from cnnlab.training._optim import OPTIMIZERS, SCHEDULERS, create_optimizer, create_scheduler

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "Augment",
    "BatchStream",
    "Callback",
    "EarlyStopping",
    "EpochBar",
    "EpochMetrics",
    "FitResult",
    "Normalize",
    "ProgressBar",
    "Runtime",
    "TrainState",
    "TrainingDiverged",
    "WeightAverage",
    "cpu_has_native_bf16",
    "create_optimizer",
    "create_scheduler",
    "evaluate",
    "fit",
    "pick_device",
    "predict",
    "resolve_precision",
    "seed_everything",
    "selection_loss",
]
