"""Training: the epoch loop, optimizers and schedulers by name, callbacks.

result = fit(model, splits, cfg.train, callbacks=[ProgressBar()])
"""

from cnnlab.training._batches import BatchStream, Normalize
from cnnlab.training._callbacks import (
    Callback,
    EarlyStopping,
    EpochMetrics,
    ProgressBar,
    TrainState,
    selection_loss,
)
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
    "BatchStream",
    "Callback",
    "EarlyStopping",
    "EpochMetrics",
    "FitResult",
    "Normalize",
    "ProgressBar",
    "TrainState",
    "TrainingDiverged",
    "create_optimizer",
    "create_scheduler",
    "evaluate",
    "fit",
    "pick_device",
    "predict",
    "seed_everything",
    "selection_loss",
]
