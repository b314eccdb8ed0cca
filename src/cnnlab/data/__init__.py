"""Datasets: the built-ins (find, verify, download, cache), folders of images, seeded splits.

from cnnlab.data import dataset_info, load_data, load_dataset, make_splits
raw = load_dataset("cifar-10")                   # DataError if the data cannot be trusted
splits = make_splits(raw, val_fraction=0.1, train_limit=0, seed=42)
splits.train_x  # uint8 [45000, 3, 32, 32]; normalize with splits.mean and splits.std
dataset_info(cfg.data).input_shape               # (channels, height, width), before training
"""

from cnnlab.data._builtin import (
    FileReport,
    RawData,
    find_data_dir,
    load_dataset,
    load_fashion_mnist,
    verify_all,
    verify_file,
)
from cnnlab.data._folder import load_folder
from cnnlab.data._idx import KINDS, DataError
from cnnlab.data._registry import DATASET_NAMES, FOLDER, REGISTRY, DatasetSpec, dataset_spec
from cnnlab.data._source import DatasetInfo, InfoCache, dataset_info, load_data, load_splits
from cnnlab.data._splits import Splits, describe_splits, make_splits, pixel_stats

__all__ = [
    "DATASET_NAMES",
    "FOLDER",
    "KINDS",
    "REGISTRY",
    "DataError",
    "DatasetInfo",
    "DatasetSpec",
    "InfoCache",
    "FileReport",
    "RawData",
    "Splits",
    "dataset_info",
    "dataset_spec",
    "describe_splits",
    "find_data_dir",
    "load_data",
    "load_dataset",
    "load_fashion_mnist",
    "load_splits",
    "load_folder",
    "make_splits",
    "pixel_stats",
    "verify_all",
    "verify_file",
]
