"""load_fashion_mnist and verify_all on the real files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from cnnlab.data import KINDS, REGISTRY, RawData, verify_all

CLASS_NAMES = REGISTRY["fashion-mnist"].class_names

SIZES = {  # decompressed payload bytes, from seed-notes
    "train-images-idx3-ubyte": 47_040_016,
    "train-labels-idx1-ubyte": 60_008,
    "t10k-images-idx3-ubyte": 7_840_016,
    "t10k-labels-idx1-ubyte": 10_008,
}


def test_shapes_and_dtypes(raw: RawData):
    assert raw.train_images.shape == (60_000, 1, 28, 28) and raw.train_images.dtype == torch.uint8
    assert raw.test_images.shape == (10_000, 1, 28, 28) and raw.test_images.dtype == torch.uint8
    assert raw.train_labels.shape == (60_000,) and raw.train_labels.dtype == torch.int64
    assert raw.test_labels.shape == (10_000,) and raw.test_labels.dtype == torch.int64


def test_classes_are_balanced(raw: RawData):
    assert raw.train_labels.bincount().tolist() == [6000] * 10
    assert raw.test_labels.bincount().tolist() == [1000] * 10


def test_class_names(raw: RawData):
    assert raw.class_names == list(CLASS_NAMES)
    assert raw.class_names[0] == "T-shirt/top" and raw.class_names[9] == "Ankle boot"


def test_source_and_checksum(raw: RawData, debian_dir: Path):
    assert raw.source == debian_dir
    hashes = [report.sha256 for report in verify_all(debian_dir)]
    assert raw.checksum == hashlib.sha256("".join(hashes).encode()).hexdigest()
    assert raw.checksum == "d1fd84a877f3b78fa9a171b3de73f93e7b6f69ed94bada3feae9d96821401f5c"


def test_repr_leaves_out_the_tensors(raw: RawData):
    assert len(repr(raw)) < 500


def test_verify_all_reports_every_file(debian_dir: Path):
    reports = verify_all(debian_dir)
    assert [r.name for r in reports] == [f"{kind}.gz" for kind in KINDS]
    assert [r.bytes for r in reports] == [(debian_dir / r.name).stat().st_size for r in reports]
    assert [r.count for r in reports] == [60_000, 60_000, 10_000, 10_000]
    assert all(r.path == debian_dir / r.name for r in reports)
