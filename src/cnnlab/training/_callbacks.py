"""Hooks through which tracking, pruning and progress observe the loop without it knowing them.

A callback subclasses Callback and overrides what it needs. It may end training early by
setting `state.stop_reason`, or abandon it by raising (a pruner raises its own exception).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean cross-entropy over the epoch's batches (with label smoothing)
    val_loss: float  # mean cross-entropy on the validation split; NaN when there is none
    val_accuracy: float  # fraction in [0, 1]; NaN when there is no validation split
    lr: float  # learning rate at the end of the epoch
    images_seen: int  # training images processed so far, all epochs
    seconds: float  # wall time of this epoch, evaluation included

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in vars(self).items() if k != "epoch"}


@dataclass
class TrainState:
    """What callbacks can see of a running fit."""

    model: torch.nn.Module
    epochs: int
    steps_per_epoch: int
    device: torch.device
    epoch: int = 0
    step: int = 0  # global step, all epochs
    history: list[EpochMetrics] = field(default_factory=list)
    stop_reason: str | None = None  # set by a callback to end training after this epoch
    # set with stop_reason when the run is abandoned (a pruned trial): its test figures would
    # never be used, so the test set is not even evaluated
    skip_test: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    # what the fit needs to go on after the current epoch (weights, optimizer, generators...):
    # set by fit, read once an epoch is closed by a Checkpointer
    snapshot: Callable[[], dict[str, Any]] | None = None


class Callback:
    def on_fit_start(self, state: TrainState) -> None: ...

    def on_epoch_start(self, state: TrainState) -> None: ...

    def on_step_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState, metrics: EpochMetrics) -> None: ...

    def on_epoch_closed(self, state: TrainState) -> None:
        """After every callback's on_epoch_end: the epoch and the decisions taken on it (early
        stopping, pruning) are final, so what state.snapshot() returns can be resumed from."""

    def on_resume(self, state: TrainState) -> None:
        """After on_fit_start, when the fit goes on from a checkpoint: state.history holds the
        epochs already run, which were observed (and logged) by the fit that ran them."""

    def on_fit_end(self, state: TrainState, result: Any) -> None: ...


class EarlyStopping(Callback):
    """Stops after `patience` epochs without an improvement of the selection loss."""

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience = patience
        self.min_delta = min_delta
        self.best = math.inf
        self.bad_epochs = 0

    def on_epoch_end(self, state: TrainState, metrics: EpochMetrics) -> None:
        loss = selection_loss(metrics)
        if loss < self.best - self.min_delta:
            self.best, self.bad_epochs = loss, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            state.stop_reason = f"early stopping: no val_loss improvement in {self.patience} epochs"

    def state_dict(self) -> dict[str, float | int]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, saved: dict[str, float | int]) -> None:
        self.best, self.bad_epochs = float(saved["best"]), int(saved["bad_epochs"])


class ProgressBar(Callback):
    """A tqdm bar per epoch on stderr; it reads no tensor, so it adds no device sync."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.bar = None

    def on_epoch_start(self, state: TrainState) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=state.steps_per_epoch,
            desc=f"epoch {state.epoch}/{state.epochs}",
            file=self.stream,
            leave=False,
            unit="step",
        )

    def on_step_end(self, state: TrainState) -> None:
        self.bar.update(1)

    def on_epoch_end(self, state: TrainState, metrics: EpochMetrics) -> None:
        self.bar.close()
        print(
            f"epoch {metrics.epoch}/{state.epochs}  train_loss {metrics.train_loss:.4f}  "
            f"val_loss {metrics.val_loss:.4f}  val_acc {metrics.val_accuracy:.4f}  "
            f"lr {metrics.lr:.2e}  {metrics.seconds:.1f}s",
            file=self.stream,
        )


class EpochBar(Callback):
    """One bar over the whole fit, a step at a time, with the last epoch's figures beside it:
    tqdm's auto mode draws it as a widget in Jupyter and as one line in a terminal."""

    def __init__(self):
        self.bar = None

    def on_fit_start(self, state: TrainState) -> None:
        from tqdm.auto import tqdm

        total = state.epochs * state.steps_per_epoch
        # A resumed fit starts its bar where the checkpoint left off.
        self.bar = tqdm(total=total, initial=state.step, unit="step", desc="training")

    def on_step_end(self, state: TrainState) -> None:
        self.bar.update(1)

    def on_epoch_end(self, state: TrainState, metrics: EpochMetrics) -> None:
        self.bar.set_postfix(
            epoch=f"{metrics.epoch}/{state.epochs}",
            val_loss=f"{metrics.val_loss:.4f}",
            val_acc=f"{metrics.val_accuracy:.4f}",
        )

    def on_fit_end(self, state: TrainState, result) -> None:
        self.bar.close()


def selection_loss(metrics: EpochMetrics) -> float:
    """Model selection uses validation loss; without a validation split, training loss."""
    return metrics.train_loss if math.isnan(metrics.val_loss) else metrics.val_loss
