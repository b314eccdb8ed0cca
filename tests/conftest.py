"""Shared fixtures: the real Fashion-MNIST (installed by scripts/setup.sh), cut small."""

from __future__ import annotations

import os

import pytest

from cnnlab.config import load_config
from cnnlab.data import load_fashion_mnist, make_splits

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

# A model and run small enough to train in a second or two on two CPU cores.
TINY = [
    "model.filters=8",
    "model.hidden_units=[32]",
    "train.epochs=2",
    "train.batch_size=64",
    "train.eval_batch_size=500",
    "data.train_limit=1000",
]


@pytest.fixture(scope="session")
def fmnist():
    return load_fashion_mnist()


@pytest.fixture(scope="session")
def tiny_splits(fmnist):
    """1,000 training images; validation and test cut to 1,000 each to keep evaluation cheap."""
    splits = make_splits(fmnist, val_fraction=0.1, train_limit=1000, seed=42)
    splits.val_x, splits.val_y = splits.val_x[:1000], splits.val_y[:1000]
    splits.test_x, splits.test_y = splits.test_x[:1000], splits.test_y[:1000]
    return splits


@pytest.fixture(scope="session")
def tiny_cfg():
    def make(*overrides: str):
        return load_config(None, [*TINY, *overrides])

    return make
