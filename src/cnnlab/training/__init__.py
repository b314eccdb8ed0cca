"""Training: the epoch loop, optimizers and schedulers by name, callbacks.

result = fit(model, splits, cfg.train, callbacks=[ProgressBar()])
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
    "EarlyStopping",
    "EpochBar",
    "EpochMetrics",
    "FitResult",
    "Normalize",
    "ProgressBar",
    "TrainState",
    "TrainingDiverged",
    "evaluate",
    "fit",
    "predict",
    "seed_everything",
]
