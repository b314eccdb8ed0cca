"""Seeded train / validation / test splits of a dataset as in-memory tensors.

    splits = make_splits(load_dataset("fashion-mnist"), val_fraction=0.1, train_limit=0, seed=42)
    splits.train_x.shape, splits.mean, describe_splits(splits)

The validation split is held out of the official training set, so the test set is touched only
for the final report. Images stay uint8 (a quarter of float32's memory); normalize per batch with
`mean` and `std`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from cnnlab.config import ConfigError
from cnnlab.data._builtin import RawData

_STATS_CHUNK = 8192  # images per float64 chunk when computing pixel statistics


@dataclass
class Splits:
    """Images uint8 [N, C, H, W], labels int64 [N]; the validation split may be empty."""

    train_x: torch.Tensor = field(repr=False)
    val_x: torch.Tensor = field(repr=False)
    test_x: torch.Tensor = field(repr=False)
    train_y: torch.Tensor = field(repr=False)
    val_y: torch.Tensor = field(repr=False)
    test_y: torch.Tensor = field(repr=False)
    mean: tuple[float, ...]  # per-channel pixel mean of the training split, [0, 1] scale
    std: tuple[float, ...]  # per-channel pixel standard deviation of the training split
    num_classes: int
    input_shape: tuple[int, int, int]  # channels, height, width of one image
    class_names: list[str]
    checksum: str = ""  # RawData.checksum of the data the splits came from
    note: str = ""  # RawData.note: how the test set came about, when not from the files


def make_splits(raw: RawData, val_fraction: float, train_limit: int, seed: int) -> Splits:
    """Hold out round(N * val_fraction) shuffled training images; keep train_limit of the rest.

    The permutation depends only on `seed`, so the validation split does not move when
    train_limit changes and the same seed always gives the same splits.
    """
    n = len(raw.train_images)
    val_idx, train_idx = _split_indices(n, val_fraction, seed)
    if train_limit < 0:
        raise ConfigError(f"data.train_limit: expected >= 0, got {train_limit!r}")
    if train_limit > len(train_idx):
        raise ConfigError(
            f"data.train_limit: expected at most {len(train_idx):,} (the training split "
            f"with val_fraction={val_fraction}), got {train_limit:,}"
        )
    if train_limit > 0:
        train_idx = train_idx[:train_limit]
    train_x = raw.train_images[train_idx]
    mean, std = pixel_stats(train_x)
    return Splits(
        train_x=train_x,
        val_x=raw.train_images[val_idx],
        test_x=raw.test_images.clone(),  # independent of raw, like the others
        train_y=raw.train_labels[train_idx],
        val_y=raw.train_labels[val_idx],
        test_y=raw.test_labels.clone(),
        mean=mean,
        std=std,
        num_classes=len(raw.class_names),
        input_shape=tuple(train_x.shape[1:]),
        class_names=list(raw.class_names),
        checksum=raw.checksum,
        note=raw.note,
    )


def describe_splits(splits: Splits) -> dict[str, Any]:
    """Sizes and statistics as flat values, ready to log as parameters."""
    return {
        "train": len(splits.train_x),
        "val": len(splits.val_x),
        "test": len(splits.test_x),
        "num_classes": splits.num_classes,
        "input_shape": list(splits.input_shape),
        "mean": [round(m, 6) for m in splits.mean],
        "std": [round(s, 6) for s in splits.std],
    }


def pixel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 [N, C, H, W] pixels in [0, 1] scale; float64 sums, a
    chunk at a time."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    for chunk in images.split(_STATS_CHUNK):
        values = chunk.to(torch.float64)
        total += values.sum(dim=(0, 2, 3))
        squares += values.square().sum(dim=(0, 2, 3))
    count = images.numel() / channels
    means, stds = [], []
    for c in range(channels):
        mean = float(total[c]) / count / 255.0
        var = max(float(squares[c]) / count / 255.0**2 - mean * mean, 0.0)  # rounding can dip < 0
        means.append(mean)
        stds.append(math.sqrt(var))
    return tuple(means), tuple(stds)


def _split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"data.val_fraction: expected in [0, 1), got {val_fraction!r}")
    n_val = round(n * val_fraction)
    if n_val >= n:
        raise ConfigError(
            f"data.val_fraction: expected to leave training images, got {val_fraction!r} "
            f"({n_val:,} of {n:,} held out)"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:n_val], perm[n_val:]
