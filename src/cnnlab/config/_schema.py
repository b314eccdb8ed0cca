"""The sections besides [model], and Config, which holds one of each.

Every default has its one home here (or in _models, for [model]), with a comment that says
what it means; a config file only states what it changes.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from cnnlab.config._base import (
    _AT_LEAST_0,
    _FRACTION,
    _POSITIVE,
    DATASET_NAMES,
    FOLDER,
    ConfigError,
    DeviceName,
    OptimizerName,
    PrecisionName,
    SchedulerName,
    _Checked,
)
from cnnlab.config._models import CnnConfig, ModelConfig


@dataclass
class DataConfig(_Checked):
    SECTION: ClassVar[str] = "data"
    CHECKS: ClassVar[dict[str, tuple[Any, str]]] = {
        "val_fraction": _FRACTION,
        "train_limit": _AT_LEAST_0,
        "test_fraction": (lambda v: 0 < v < 1, "in (0, 1)"),
    }

    # a built-in (fashion-mnist, mnist, kmnist, cifar-10: `cnnlab data --list`) or "folder"
    dataset: str = "fashion-mnist"
    path: str = ""  # "folder": one sub-folder of images per class, optional train/ and test/
    image_size: int | list[int] = 0  # "folder": resize to this side or [height, width]; 0 = as
    # stored, where every image must have the same size
    test_fraction: float = 0.2  # "folder" without test/: share held out as the test set, (0, 1)
    val_fraction: float = 0.1  # share of the training set held out for model selection, [0, 1)
    train_limit: int = 0  # train on this many images of the training split; 0 = all of them
    split_seed: int = 42  # seeds the validation split alone, so runs that differ in train.seed
    # (a study's seeds) are selected and compared on the same validation images; a folder's
    # held-out test set too

    def _check_together(self) -> None:
        if self.dataset not in DATASET_NAMES:
            close = difflib.get_close_matches(self.dataset, DATASET_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"data.dataset: expected one of {', '.join(DATASET_NAMES)}, "
                f"got {self.dataset!r}{hint}"
            )
        folder = self.dataset == FOLDER
        if folder and not self.path:
            raise ConfigError('data.path: expected the folder of images for dataset = "folder"')
        sizes = self.image_size if isinstance(self.image_size, list) else [self.image_size]
        if isinstance(self.image_size, list) and not (
            len(sizes) == 2 and all(isinstance(v, int) and v > 0 for v in sizes)
        ):
            raise ConfigError(
                f"data.image_size: expected a side >= 0 or [height, width] > 0, "
                f"got {self.image_size!r}"
            )
        if not isinstance(self.image_size, list) and self.image_size < 0:
            raise ConfigError(f"data.image_size: expected >= 0, got {self.image_size!r}")
        if not folder:
            for key, default in (("path", ""), ("image_size", 0)):
                if getattr(self, key) != default:
                    raise ConfigError(
                        f'data.{key}: expected only with dataset = "folder", '
                        f"got {getattr(self, key)!r} with dataset = {self.dataset!r}"
                    )


@dataclass
class TrainConfig(_Checked):
    SECTION: ClassVar[str] = "train"
    CHECKS: ClassVar[dict[str, tuple[Any, str]]] = {
        "epochs": _POSITIVE,
        "steps_per_epoch": _AT_LEAST_0,
        "batch_size": _POSITIVE,
        "lr": _POSITIVE,
        "weight_decay": _AT_LEAST_0,
        "momentum": _FRACTION,
        "step_size": _POSITIVE,
        "gamma": (lambda v: 0 < v <= 1, "in (0, 1]"),
        "plateau_patience": _AT_LEAST_0,
        "pct_start": (lambda v: 0 < v < 1, "in (0, 1)"),
        "label_smoothing": _FRACTION,
        "early_stopping": _AT_LEAST_0,
        "eval_batch_size": _POSITIVE,
        "crop_padding": _AT_LEAST_0,
        "erase": _FRACTION,
        "ema": _FRACTION,
        "threads": _AT_LEAST_0,
    }

    epochs: int = 10  # upper bound; early stopping may end sooner
    steps_per_epoch: int = 0  # batches per epoch; 0 = one pass over the training split
    batch_size: int = 64  # images per optimizer step
    optimizer: OptimizerName = "adam"
    lr: float = 1e-3  # learning rate (peak rate for onecycle)
    weight_decay: float = 1e-5  # L2 for sgd/adam, decoupled for adamw
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    scheduler: SchedulerName = "none"
    step_size: int = 5  # step: epochs between lr decays
    gamma: float = 0.1  # step and plateau: factor applied to lr at each decay
    plateau_patience: int = 10  # plateau: epochs without val_loss improvement before a decay
    pct_start: float = 0.25  # onecycle: share of all steps spent warming up, (0, 1)
    label_smoothing: float = 0.0  # cross-entropy label smoothing, [0, 1)
    early_stopping: int = 0  # stop after this many epochs without val_loss improvement; 0 = off
    restore_best: bool = True  # evaluate the test set with the best validation epoch's weights
    eval_batch_size: int = 1000  # images per forward pass when evaluating
    seed: int = 42  # seeds torch, numpy, weight init, batch order and augmentation
    device: DeviceName = "auto"  # auto picks cuda, then mps, then cpu
    precision: PrecisionName = "auto"  # autocast: auto = bf16 on cuda or a CPU with native bf16
    channels_last: bool = True  # NHWC layout for conv weights and batches (oneDNN/cuDNN favour it)
    fused_stem: bool = True  # on CPU, run the first conv block (conv, [BatchNorm], 2x2 max-pool,
    # [relu]) as one C kernel, built on first use with the system's C compiler; without one,
    # PyTorch's ops (BatchNorm still folded into the conv)
    flip: bool = False  # augment: mirror each training image left-right with probability 1/2
    crop_padding: int = 0  # augment: random crop after zero-padding this many pixels; 0 = off
    erase: float = 0.0  # augment: probability of blanking a random rectangle per image, [0, 1)
    ema: float = 0.0  # decay of a per-step moving average of the weights, evaluated and tested
    # in their place (e.g. 0.999); 0 = off
    tta_flip: bool = False  # evaluate on the mean logits of each image and its mirror
    compile: bool = False  # torch.compile the model; compiling costs about a minute on 2 cores
    threads: int = 0  # torch intra-op threads; 0 = one per core this process may use

    def _check_together(self) -> None:
        if self.optimizer == "sgd" and self.nesterov and self.momentum == 0:
            raise ConfigError("train.nesterov: needs train.momentum > 0, got 0.0")


@dataclass
class TrackingConfig(_Checked):
    SECTION: ClassVar[str] = "tracking"

    experiment: str = "cnnlab"  # MLflow experiment name
    run_name: str = ""  # MLflow run name; empty = MLflow picks one
    runs_dir: str = "cnnlab-runs"  # home of the default store: mlflow.db and artifacts/
    uri: str = ""  # tracking URI; empty = sqlite:///<runs_dir>/mlflow.db
    log_weights: bool = True  # log the trained state_dict as an artifact
    # log a finished run's checkpoint (what --resume continues from) as checkpoint/last.pt;
    # false = it is deleted when the run finishes (it holds optimizer state: often large)
    log_checkpoint: bool = False
    # also log the checkpoint as checkpoint/last.pt after every epoch, so that a run cut short
    # on one machine goes on from another (a Ray cluster's retried task, train --resume
    # elsewhere): one upload of the weights and optimizer state per epoch
    upload_checkpoint: bool = False
    # log the trained network as an MLflow model (mlflow_model/): pyfunc, serving, registry
    log_model: bool = True


@dataclass
class SearchConfig(_Checked):
    """How `cnnlab tune` explores configs; `cnnlab train` ignores this section."""

    SECTION: ClassVar[str] = "search"
    CHECKS: ClassVar[dict[str, tuple[Any, str]]] = {
        "trials": _POSITIVE,
        "timeout": _AT_LEAST_0,
        "startup_trials": _AT_LEAST_0,
        "pruner_startup": _AT_LEAST_0,
        "pruner_warmup": _AT_LEAST_0,
        "heartbeat": _POSITIVE,
    }

    engine: Literal["hyperopt", "optuna"] = "hyperopt"  # library that proposes trials
    algo: Literal["tpe", "random"] = "tpe"  # proposal algorithm, in either engine
    trials: int = 20  # trials in total, counted across resumes
    timeout: float = 0.0  # seconds after which no new trial starts; 0 = no limit
    seed: int = 42  # seeds the proposals; each trial trains with train.seed
    objective: Literal["val_loss", "val_accuracy"] = "val_loss"  # of the best epoch; never test
    startup_trials: int = 10  # TPE proposes this many trials at random before modelling
    # impossible architectures count toward `trials`; false = recorded, and another is drawn
    count_invalid: bool = True
    pruner: Literal["none", "median", "hyperband"] = "none"  # optuna: stop weak trials early
    pruner_startup: int = 3  # median: trials that finish before any is pruned
    pruner_warmup: int = 0  # median: epochs every trial runs before it may be pruned
    name: str = ""  # tells apart searches of the same config; part of the search id
    state_dir: str = ""  # engine state (Trials pickle, Optuna SQLite); empty = beside MLflow
    # optuna: a study shared by workers: postgresql://..., sqlite:///... or journal:///file.log
    storage: str = ""  # empty = a local SQLite study beside MLflow, one process at a time
    study: str = ""  # the shared study's name; empty = cnnlab-<hash of the config>
    heartbeat: int = 10  # seconds between a worker's heartbeats; silent 3x longer = dead
    register: str = ""  # after the search, the best trial's MLflow model as a new version of
    # this registered model in the MLflow Model Registry; empty = none
    # dotted config key -> distribution table, e.g. "model.filters" =
    # { dist = "quniform", low = 16, high = 128, q = 8, int = true }; see cnnlab.search
    space: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=CnnConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    search: SearchConfig = field(default_factory=SearchConfig)


SECTIONS = {
    "data": DataConfig,
    "train": TrainConfig,
    "tracking": TrackingConfig,
    "search": SearchConfig,
}
