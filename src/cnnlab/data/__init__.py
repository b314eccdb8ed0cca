"""Fashion-MNIST: find, verify, download and cache the files; seeded splits as tensors.

from cnnlab.data import load_fashion_mnist, make_splits
raw = load_fashion_mnist()                       # DataError if the data cannot be trusted
splits = make_splits(raw, val_fraction=0.1, train_limit=0, seed=42)
splits.train_x  # uint8 [54000, 1, 28, 28]; normalize with splits.mean and splits.std
"""

from cnnlab.data._fashion_mnist import (
    CLASS_NAMES,
    INPUT_SHAPE,
    FileReport,
    RawData,
    find_data_dir,
    load_fashion_mnist,
    verify_all,
)
from cnnlab.data._idx import KINDS, DataError, verify_file
from cnnlab.data._splits import Splits, describe_splits, make_splits, pixel_stats

# Datasets by their name in `data.dataset`: what a model needs to know before loading any.
DATASET_SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {"fashion-mnist": INPUT_SHAPE}

__all__ = [
    "CLASS_NAMES",
    "DATASET_SHAPES",
    "KINDS",
    "DataError",
    "FileReport",
    "RawData",
    "Splits",
    "describe_splits",
    "find_data_dir",
    "load_fashion_mnist",
    "make_splits",
    "pixel_stats",
    "verify_all",
    "verify_file",
]
