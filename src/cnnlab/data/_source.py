"""A config's data, whichever kind `data.dataset` names: a built-in dataset or a folder.

info = dataset_info(cfg.data)       # (input shape, class names) before any training
raw = load_data(cfg.data)           # RawData; DataError when the data cannot be trusted
splits = load_splits(cfg)           # loaded, then split as the config's data section says
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.data._builtin import RawData, load_dataset
from cnnlab.data._folder import load_folder
from cnnlab.data._registry import FOLDER, dataset_spec
from cnnlab.data._splits import Splits, make_splits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know of its data before training."""

    input_shape: tuple[int, int, int]  # channels, height, width
    class_names: tuple[str, ...]
    train_images: int  # the training half, before the validation split

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def of(cls, splits: Any) -> DatasetInfo:
        """The info of data already split (train_images: what the splits hold of it)."""
        held = len(splits.train_x) + len(splits.val_x)
        return cls(tuple(splits.input_shape), tuple(splits.class_names), held)


def dataset_info(data: Any, data_dir: str | Path | None = None) -> DatasetInfo:
    """A built-in's shape comes from the registry; a folder's from its (cached) images."""
    if data.dataset != FOLDER:
        spec = dataset_spec(data.dataset)
        return DatasetInfo(spec.input_shape, spec.class_names, spec.train_images)
    raw = load_data(data, data_dir)
    shape = tuple(raw.train_images.shape[1:])
    return DatasetInfo(shape, tuple(raw.class_names), len(raw.train_images))


def load_data(data: Any, data_dir: str | Path | None = None) -> RawData:
    """The config's dataset; `data_dir` is where a built-in's files are (folders have data.path)."""
    if data.dataset == FOLDER:
        size = data.image_size if isinstance(data.image_size, list) else [data.image_size] * 2
        image_size = tuple(size) if data.image_size else None
        return load_folder(data.path, image_size, data.test_fraction, data.split_seed)
    return load_dataset(data.dataset, data_dir)


class InfoCache:
    """dataset_info once per distinct data source: a search checks hundreds of sampled configs,
    and a folder's info costs a scan of its files."""

    def __init__(self, data_dir: str | Path | None = None):
        self.data_dir = data_dir
        self._known: dict[tuple, DatasetInfo] = {}

    def __call__(self, data: Any) -> DatasetInfo:
        # Every setting load_data reads: a folder's held-out share and its seed decide how
        # many images its training half has.
        key = (data.dataset, data.path, repr(data.image_size), data.test_fraction, data.split_seed)
        if key not in self._known:
            self._known[key] = dataset_info(data, self.data_dir)
        return self._known[key]


def load_splits(cfg: Any, data_dir: str | Path | None = None) -> Splits:
    """A config's data loaded and split by its data section (val_fraction, train_limit,
    split_seed); a note on the data (a folder's skipped files) is logged as a warning."""
    raw = load_data(cfg.data, data_dir)
    if raw.note:
        log.warning("cnnlab: %s", raw.note)
    data = cfg.data
    return make_splits(raw, data.val_fraction, data.train_limit, data.split_seed)
