"""The epoch loop: fit -> train_epoch -> evaluate. It knows nothing of MLflow or search engines.

result = fit(model, splits, cfg.train, callbacks=[ProgressBar()])
result.test_accuracy, result.history[-1].val_loss
fit(model, splits, cfg.train, callbacks, resume=load_checkpoint(...))   # see _checkpoint
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.config import TrainConfig
from cnnlab.training._batches import BatchStream, Normalize, eval_batches
from cnnlab.training._callbacks import (
    Callback,
    EarlyStopping,
    EpochMetrics,
    TrainState,
    selection_loss,
)
from cnnlab.training._checkpoint import capture, restore
from cnnlab.training._ema import WeightAverage
from cnnlab.training._fast import Augment, ComputePath, Runtime, set_threads
from cnnlab.training._optim import Schedule, create_optimizer, create_scheduler


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class FitResult:
    history: list[EpochMetrics]
    best_epoch: int  # 1-based epoch with the lowest validation loss
    best_val_loss: float
    best_val_accuracy: float
    test_loss: float
    test_accuracy: float
    epochs_run: int
    images_seen: int
    seconds: float  # wall time of the whole fit, test evaluation included
    stop_reason: str | None  # why training ended before cfg.epochs, if it did
    tested_epoch: int  # epoch whose weights were evaluated on the test set
    compute: ComputePath | None = None  # the device, precision, layout and fused blocks it ran
    # counts of (true class, predicted class) on the test set, as the test metrics were taken;
    # None when the test set was not evaluated (a pruned trial)
    test_confusion: list[list[int]] | None = None
    class_names: list[str] = field(default_factory=list)


def seed_everything(seed: int) -> torch.Generator:
    """Seeds python, numpy and torch; returns the generator that shuffles training batches."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class _Parts:
    """What every training step uses, built once per fit."""

    data: _Data
    stream: BatchStream
    steps: int  # steps per epoch
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    runtime: Runtime
    augment: Augment
    forward: Callable[[torch.Tensor], torch.Tensor]  # the model, or its torch.compile wrapper
    ema: WeightAverage | None  # averaged weights, validated and tested in the model's place
    stopping: EarlyStopping | None  # train.early_stopping's callback

    @property
    def evaluated(self):
        return self.ema.model if self.ema else self.forward


class _Data:
    """The splits as tensors on the training device."""

    def __init__(self, splits, device: torch.device):
        def put(t):
            return t.to(device, non_blocking=True)

        self.train = put(splits.train_x), put(splits.train_y)
        self.val = put(splits.val_x), put(splits.val_y)
        self.test = put(splits.test_x), put(splits.test_y)
        self.normalize = Normalize(splits.mean, splits.std)
        self.class_names = list(splits.class_names)


def fit(
    model, splits, cfg: TrainConfig, callbacks: list[Callback] = (), resume: dict | None = None
) -> FitResult:
    """Trains `model` on splits.train, selects on splits.val, reports on splits.test.

    `resume` is a checkpoint of this model and config (load_checkpoint): every state it holds
    is put back, and training goes on from the next epoch as if it had never stopped.
    """
    started = time.perf_counter()
    set_threads(cfg.threads)
    generator = seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    # A resumed fit runs its first block the way it started (the kernel or PyTorch's ops):
    # measured again, the choice could flip, and the two round differently.
    native = resume.get("native_kernel") if resume is not None else None
    parts = _build_parts(model.to(device), splits, cfg, generator, device, native)
    callbacks = [*callbacks, *([parts.stopping] if parts.stopping else [])]
    state = TrainState(model=model, epochs=cfg.epochs, steps_per_epoch=parts.steps, device=device)
    best = _Best(cfg.restore_best)
    if resume is not None:
        started -= restore(resume, model, parts, state, best)
    state.snapshot = lambda: capture(model, parts, state, best, time.perf_counter() - started)
    _emit(callbacks, "on_fit_start", state)
    if resume is not None:
        _emit(callbacks, "on_resume", state)
    while state.epoch < cfg.epochs and not state.stop_reason:
        _epoch(state, parts, cfg, callbacks, best)
    return _finish(model, parts, cfg, state, best, started, callbacks)


def _epoch(state: TrainState, parts: _Parts, cfg: TrainConfig, callbacks, best: _Best) -> None:
    state.epoch += 1
    _emit(callbacks, "on_epoch_start", state)
    metrics = _train_epoch(state, parts, cfg, callbacks)
    parts.schedule.after_epoch(selection_loss(metrics))
    best.update(metrics, parts.ema.model if parts.ema else state.model)
    state.history.append(metrics)
    _emit(callbacks, "on_epoch_end", state, metrics)
    _emit(callbacks, "on_epoch_closed", state)  # decisions final: the checkpoint is taken here


def _finish(model, parts: _Parts, cfg: TrainConfig, state, best, started, callbacks) -> FitResult:
    """The trained weights chosen, tested unless the fit was abandoned, and reported."""
    data = parts.data
    if parts.ema:
        parts.ema.copy_to(model)  # the averaged weights are the trained result
    best.restore(model)
    test_loss, test_acc, confusion = math.nan, math.nan, None
    if not state.skip_test:
        classes = len(data.class_names)
        confusion = torch.zeros(classes, classes, dtype=torch.long, device=state.device)
        test_loss, test_acc = evaluate(
            parts.forward, *data.test, data.normalize, cfg.eval_batch_size, parts.runtime, confusion
        )
    chosen = state.history[best.epoch - 1]
    result = FitResult(
        history=state.history,
        best_epoch=best.epoch,
        best_val_loss=chosen.val_loss,
        best_val_accuracy=chosen.val_accuracy,
        test_loss=test_loss,
        test_accuracy=test_acc,
        epochs_run=len(state.history),
        images_seen=state.history[-1].images_seen,
        seconds=time.perf_counter() - started,
        stop_reason=state.stop_reason,
        tested_epoch=best.epoch if cfg.restore_best else len(state.history),
        compute=parts.runtime.path,
        test_confusion=confusion.tolist() if confusion is not None else None,
        class_names=data.class_names,
    )
    _emit(callbacks, "on_fit_end", state, result)
    return result


def _build_parts(
    model, splits, cfg: TrainConfig, generator, device: torch.device, native: bool | None
) -> _Parts:
    runtime = Runtime.from_config(cfg, device, model)
    # Before the optimizer exists, so its state takes the same layout.
    runtime.prepare(model, tuple(splits.train_x.shape[1:]), native)
    data = _Data(splits, device)
    stream = BatchStream(len(data.train[0]), cfg.batch_size, generator, device)
    steps = cfg.steps_per_epoch or stream.steps_per_pass
    optimizer = create_optimizer(model.parameters(), cfg)
    return _Parts(
        data=data,
        stream=stream,
        steps=steps,
        optimizer=optimizer,
        schedule=create_scheduler(optimizer, cfg, steps),
        runtime=runtime,
        # Its own generator, so switching augmentation on does not reorder the batches.
        augment=Augment(cfg, torch.Generator().manual_seed(cfg.seed + 1)),
        forward=torch.compile(model) if cfg.compile else model,
        ema=WeightAverage(model, cfg.ema) if cfg.ema else None,
        stopping=EarlyStopping(cfg.early_stopping) if cfg.early_stopping else None,
    )


def _train_epoch(state, parts: _Parts, cfg: TrainConfig, callbacks) -> EpochMetrics:
    started = time.perf_counter()
    data, stream, optimizer, augment = parts.data, parts.stream, parts.optimizer, parts.augment
    model = parts.forward
    model.train()
    images, labels = data.train
    # Losses add up on the device; reading them once per epoch avoids a sync per step.
    loss_sum = torch.zeros((), device=state.device)
    for _ in range(state.steps_per_epoch):
        idx = stream.next()
        x = augment.erase(data.normalize(augment.crop_flip(images[idx])))
        with parts.runtime.autocast():
            logits = model(parts.runtime.layout(x))
        # The loss in fp32: bf16 logits would round the softmax of a confident model.
        loss = F.cross_entropy(logits.float(), labels[idx], label_smoothing=cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        parts.schedule.after_step()
        if parts.ema:
            parts.ema.update()
        loss_sum += loss.detach()
        state.step += 1
        _emit(callbacks, "on_step_end", state)
    train_loss = loss_sum.item() / state.steps_per_epoch
    if not math.isfinite(train_loss):
        # A NaN or inf at any step poisons the running sum, so this catches every step's loss.
        raise TrainingDiverged(f"training loss became {train_loss} in epoch {state.epoch}")
    val_loss, val_acc = evaluate(
        parts.evaluated, *data.val, data.normalize, cfg.eval_batch_size, parts.runtime
    )
    seen = (state.history[-1].images_seen if state.history else 0) + (
        state.steps_per_epoch * stream.batch_size
    )
    return EpochMetrics(
        epoch=state.epoch,
        train_loss=train_loss,
        val_loss=val_loss,
        val_accuracy=val_acc,
        lr=optimizer.param_groups[0]["lr"],
        images_seen=seen,
        seconds=time.perf_counter() - started,
    )


@torch.no_grad()
def evaluate(
    model,
    images,
    labels,
    normalize,
    batch_size: int,
    runtime: Runtime | None = None,
    confusion: torch.Tensor | None = None,
) -> tuple[float, float]:
    """Mean cross-entropy (no label smoothing) and accuracy; (NaN, NaN) for an empty split.

    Without a runtime: fp32, batches in the layout of the model's conv weights. A `confusion`
    tensor [classes, classes] gets the counts of (true, predicted) added to it.
    """
    if len(images) == 0:
        return math.nan, math.nan
    runtime = runtime or Runtime.matching(model, images.device)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    for x, y in eval_batches(images, labels, batch_size):
        logits = runtime.logits(model, normalize(x))
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        predicted = logits.argmax(1)
        correct += (predicted == y).sum()
        if confusion is not None:
            confusion.index_put_((y, predicted), torch.ones_like(y), accumulate=True)
    model.train(was_training)
    return loss_sum.item() / len(images), correct.item() / len(images)


@torch.no_grad()
def predict(
    model, images, normalize, batch_size: int = 1000, runtime: Runtime | None = None
) -> torch.Tensor:
    """Predicted class of every image, in order (for confusion matrices)."""
    runtime = runtime or Runtime.matching(model, images.device)
    model.eval()
    batches = eval_batches(images, images, batch_size)
    out = [runtime.logits(model, normalize(x)).argmax(1) for x, _ in batches]
    return torch.cat(out).cpu()


class _Best:
    """Remembers the epoch with the lowest selection loss and, if asked, its weights."""

    def __init__(self, keep_weights: bool):
        self.keep_weights = keep_weights
        self.loss = math.inf
        self.epoch = 0
        self.state: dict | None = None

    def update(self, metrics: EpochMetrics, model) -> None:
        loss = selection_loss(metrics)
        if self.epoch and not loss < self.loss:
            return
        self.loss, self.epoch = loss, metrics.epoch
        if self.keep_weights:
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def restore(self, model) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)

    def state_dict(self) -> dict:
        return {"loss": self.loss, "epoch": self.epoch, "weights": self.state}

    def load_state_dict(self, saved: dict, device: torch.device) -> None:
        self.loss, self.epoch = float(saved["loss"]), int(saved["epoch"])
        weights = saved["weights"]
        self.state = {k: v.to(device) for k, v in weights.items()} if weights else None


def _emit(callbacks, hook: str, *args) -> None:
    for cb in callbacks:
        getattr(cb, hook)(*args)
