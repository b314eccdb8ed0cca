"""Checkpoints: what a fit needs to go on after an epoch, in one file, so that a run cut short
continues from its last complete epoch as if it had never stopped.

    fit(model, splits, cfg.train, [..., Checkpointer(folder / "last.pt", identity)])
    saved = load_checkpoint(folder / "last.pt", identity, model)   # CheckpointError if not ours
    fit(model, splits, cfg.train, [...], resume=saved)              # from the next epoch on

A checkpoint holds the weights, the optimizer, the schedule, the weight average, the best epoch
(with its weights when train.restore_best keeps them), early stopping, the history, the step,
the batch stream's permutation and place, and the state of every random generator: resumed
with the same thread count, a fit gives the numbers of one never stopped, bit for bit. It is
plain tensors, numbers and strings, so it loads with torch.load(weights_only=True). Where it is
kept, and for which run, is the caller's business: `identity` is only compared.
"""

from __future__ import annotations

import os
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab._signals import shielded
from cnnlab.config import ConfigError
from cnnlab.training._callbacks import Callback, EpochMetrics, TrainState

FORMAT = "cnnlab.checkpoint"
VERSION = 1
# What restore() reads; a file that lacks any of it is refused before anything is restored.
_PARTS = (
    "epoch",
    "step",
    "seconds",
    "model",
    "optimizer",
    "schedule",
    "ema",
    "best",
    "stopping",
    "history",
    "stop_reason",
    "skip_test",
    "stream",
    "augment",
    "rng",
)


class CheckpointError(ConfigError):
    """A checkpoint that cannot be resumed from: unreadable, not cnnlab's, or another run's."""


class Checkpointer(Callback):
    """Saves state.snapshot() to `path` once every epoch is closed, atomically: a kill during
    the write leaves the previous epoch's checkpoint whole."""

    def __init__(self, path: str | Path, identity: dict[str, str]):
        self.path = Path(path)
        self.identity = dict(identity)  # what load_checkpoint compares: run, config, data

    def on_epoch_closed(self, state: TrainState) -> None:
        header = {"format": FORMAT, "version": VERSION, "identity": self.identity}
        save_checkpoint({**header, **state.snapshot()}, self.path)


def save_checkpoint(data: dict[str, Any], path: Path) -> None:
    """A temporary file in the same folder, then a rename: the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with shielded():  # Ctrl-C or SIGTERM lands once the file is whole
            with tmp.open("wb") as f:
                torch.save(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left when the write failed


def load_checkpoint(path: Path, identity: dict[str, str], model: torch.nn.Module) -> dict:
    """The checkpoint at `path`, checked to be cnnlab's, of this format, written for `identity`
    and holding weights of `model`'s shapes; CheckpointError (one line) otherwise."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated zip, a pickle of objects, anything not ours
        raise CheckpointError(f"{path}: not a readable checkpoint ({_unreadable(exc)})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cnnlab checkpoint (no format {FORMAT!r})")
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {data.get('version')!r}, expected {VERSION}"
        )
    missing = [k for k in (*_PARTS, "identity") if k not in data]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint (no {', '.join(missing)})")
    for key, expected in identity.items():
        found = data["identity"].get(key)
        if found != expected:
            raise CheckpointError(
                f"{path}: written for {key} {found!r}, expected {key} {expected!r}"
            )
    _check_shapes(path, data["model"], model.state_dict())
    return data


def _check_shapes(path: Path, saved: Any, expected: dict[str, torch.Tensor]) -> None:
    if not isinstance(saved, dict) or set(saved) != set(expected):
        names = set(saved) if isinstance(saved, dict) else set()
        lacking = sorted(set(expected) - names)[:3]
        extra = sorted(names - set(expected))[:3]
        raise CheckpointError(
            f"{path}: weights of another model (missing {lacking}, unexpected {extra})"
        )
    for name, tensor in expected.items():
        found = saved[name]
        if not isinstance(found, torch.Tensor) or found.shape != tensor.shape:
            shape = list(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
            raise CheckpointError(
                f"{path}: {name} has shape {shape} in the checkpoint, expected {list(tensor.shape)}"
            )


def _unreadable(exc: BaseException) -> str:
    """Why torch.load failed, in a few words: its own messages run to paragraphs."""
    text = str(exc).strip()
    if "Unsupported global" in text:  # weights_only met a class: code would run to load it
        return "it holds objects besides tensors, numbers and strings; not loaded"
    if text.startswith("Weights only load failed"):
        return "damaged or not a torch file"
    first = text.splitlines()[0].split(". ")[0][:120] if text else type(exc).__name__
    return f"damaged or not a torch file: {first}"


# ---------------------------------------------------------------- the loop's side


def capture(model, parts, state: TrainState, best, seconds: float) -> dict[str, Any]:
    """Everything fit restores, as references to the live tensors: written out at once."""
    return {
        "epoch": state.epoch,
        "step": state.step,
        "seconds": seconds,
        "model": model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "schedule": parts.schedule.state_dict(),
        "ema": parts.ema.state_dict() if parts.ema else None,
        "best": best.state_dict(),
        "stopping": parts.stopping.state_dict() if parts.stopping else None,
        "history": [asdict(m) for m in state.history],
        "stop_reason": state.stop_reason,
        "skip_test": state.skip_test,
        "stream": parts.stream.state_dict(),
        "augment": parts.augment.generator.get_state(),
        "rng": rng_state(state.device),
        # Optional (older checkpoints lack it): how the first block ran, read by fit.
        "native_kernel": parts.runtime.native_kernel,
    }


def restore(saved: dict[str, Any], model, parts, state: TrainState, best) -> float:
    """Puts a checkpoint back into a freshly built fit; returns the seconds it had run."""
    model.load_state_dict(saved["model"])
    # The optimizer first: the schedule's state refers to the rates in its groups.
    parts.optimizer.load_state_dict(saved["optimizer"])
    parts.schedule.load_state_dict(saved["schedule"])
    if parts.ema:
        parts.ema.load_state_dict(saved["ema"])
    best.load_state_dict(saved["best"], state.device)
    if parts.stopping:
        parts.stopping.load_state_dict(saved["stopping"])
    state.epoch, state.step = int(saved["epoch"]), int(saved["step"])
    state.history = [EpochMetrics(**m) for m in saved["history"]]
    state.stop_reason, state.skip_test = saved["stop_reason"], bool(saved["skip_test"])
    parts.stream.load_state_dict(saved["stream"])
    parts.augment.generator.set_state(saved["augment"])
    set_rng_state(saved["rng"], state.device)
    return float(saved["seconds"])


def rng_state(device: torch.device) -> dict[str, Any]:
    """torch's, numpy's and Python's global generators (CUDA's on a CUDA fit), as tensors and
    numbers that weights_only loading accepts."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, words, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {
            "version": version,
            "words": torch.tensor(words, dtype=torch.int64),
            "gauss": gauss_next,
        },
    }


def set_rng_state(saved: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state_all(saved["cuda"])
    n = saved["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["gauss"]))
    p = saved["python"]
    random.setstate((p["version"], tuple(p["words"].tolist()), p["gauss"]))
