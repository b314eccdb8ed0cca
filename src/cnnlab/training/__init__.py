"""Training: the epoch loop, optimizers and schedulers by name, callbacks.

result = fit(model, splits, cfg.train, callbacks=[ProgressBar()])
fit(model, splits, cfg.train, [...], resume=load_checkpoint(path, identity, model))
"""

from cnnlab.training._batches import Normalize
from cnnlab.training._callbacks import (
    Callback,
    EarlyStopping,
    EpochBar,
    EpochMetrics,
    ProgressBar,
    TrainState,
)
from cnnlab.training._checkpoint import Checkpointer, CheckpointError, load_checkpoint
from cnnlab.training._fast import Runtime
from cnnlab.training._loop import (
    FitResult,
    TrainingDiverged,
    evaluate,
    fit,
    predict,
    seed_everything,
)
from cnnlab.training._optim import OPTIMIZERS, SCHEDULERS

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "Callback",
    "CheckpointError",
    "Checkpointer",
    "EarlyStopping",
    "EpochBar",
    "EpochMetrics",
    "FitResult",
    "Normalize",
    "ProgressBar",
    "Runtime",
    "TrainState",
    "TrainingDiverged",
    "evaluate",
    "fit",
    "load_checkpoint",
    "predict",
    "seed_everything",
]
