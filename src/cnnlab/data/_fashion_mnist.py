"""Find, verify and load Fashion-MNIST.

    raw = load_fashion_mnist()          # finds the files, downloading them if need be
    raw.train_images.shape, raw.checksum
    for report in verify_all("/data/fashion-mnist"): print(report.name, report.sha256)

Search order: the `data_dir` argument, else $CNNLAB_DATA_DIR (either is authoritative: no
fallback), then the Debian package's directory, then the user cache; a directory counts only if
it holds all four files. Failing all, the missing files are downloaded into the cache.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cnnlab.data import _download
from cnnlab.data._idx import FILES, KINDS, DataError, file_name, verify_file

# Where the Debian package `fashion-mnist` puts the files; tests point this elsewhere.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# What a model needs to know of the dataset before any of it is loaded:
# ((channels, height, width), classes).
INPUT_SHAPE: tuple[tuple[int, int, int], int] = ((1, 28, 28), len(CLASS_NAMES))


@dataclass
class RawData:
    """The four files as tensors, parsed and verified; nothing split or normalized yet."""

    train_images: torch.Tensor = field(repr=False)  # uint8 [60000, 28, 28]
    train_labels: torch.Tensor = field(repr=False)  # int64 [60000]
    test_images: torch.Tensor = field(repr=False)  # uint8 [10000, 28, 28]
    test_labels: torch.Tensor = field(repr=False)  # int64 [10000]
    source: Path  # the directory the files were read from
    checksum: str  # sha256 over the four payload hashes: a fingerprint of the data
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))


@dataclass
class FileReport:
    """One verified file, as `cnnlab data --verify` prints it."""

    name: str  # file name, e.g. train-images-idx3-ubyte.gz
    path: Path
    count: int  # images or labels in the file
    sha256: str  # of the decompressed payload
    bytes: int  # size of the decompressed payload


def find_data_dir(data_dir: str | Path | None = None, download: bool = True) -> Path:
    """The directory holding all four files; downloads into the cache when none is found."""
    explicit = data_dir if data_dir not in (None, "") else os.environ.get("CNNLAB_DATA_DIR")
    if explicit:
        path = Path(explicit).expanduser()
        missing = _missing(path)
        if missing:
            name = file_name(missing[0])
            raise DataError(
                f"{name}: data dir: expected the file in {path}, got no such file ({path / name})"
            )
        return path
    for candidate in (DEBIAN_DIR, _download.cache_dir()):
        if not _missing(candidate):
            return candidate
    cache = _download.cache_dir()
    missing = _missing(cache)
    if not download:
        name = file_name(missing[0])
        raise DataError(
            f"{name}: data dir: expected the file in {DEBIAN_DIR} or {cache}, got no such file "
            f"(download is off; set CNNLAB_DATA_DIR or allow the download)"
        )
    _download.download(missing, cache, _download.mirror_url())
    return cache


def load_fashion_mnist(data_dir: str | Path | None = None, download: bool = True) -> RawData:
    """Find, verify and parse all four files (about a second for the 55 MB of payload)."""
    source = find_data_dir(data_dir, download)
    tensors: dict[str, torch.Tensor] = {}
    hashes: list[str] = []
    for kind in KINDS:
        tensors[kind], digest = verify_file(source / file_name(kind), kind)
        hashes.append(digest)
    raw = RawData(
        train_images=tensors["train-images-idx3-ubyte"],
        train_labels=tensors["train-labels-idx1-ubyte"],
        test_images=tensors["t10k-images-idx3-ubyte"],
        test_labels=tensors["t10k-labels-idx1-ubyte"],
        source=source,
        checksum=data_checksum(hashes),
    )
    _check_pair(raw.train_images, raw.train_labels, source, "train")
    _check_pair(raw.test_images, raw.test_labels, source, "t10k")
    return raw


def verify_all(data_dir: str | Path | None = None, download: bool = False) -> list[FileReport]:
    """Verify every file in full; the first bad one raises DataError."""
    source = find_data_dir(data_dir, download)
    reports = []
    for kind in KINDS:
        path = source / file_name(kind)
        tensor, digest = verify_file(path, kind)
        spec = FILES[kind]
        reports.append(FileReport(file_name(kind), path, len(tensor), digest, spec.payload_bytes))
    return reports


def data_checksum(hashes: list[str]) -> str:
    """sha256 of the payload hashes (hex) concatenated in the order of KINDS."""
    return hashlib.sha256("".join(hashes).encode("ascii")).hexdigest()


def _missing(directory: Path) -> list[str]:
    return [kind for kind in KINDS if not (directory / file_name(kind)).is_file()]


def _check_pair(images: torch.Tensor, labels: torch.Tensor, source: Path, prefix: str) -> None:
    # Per-file counts are checked already; this guards the pairing should those checks change.
    if len(images) != len(labels):
        raise DataError(
            f"{prefix}-labels-idx1-ubyte.gz: count matches {prefix}-images: "
            f"expected {len(images):,}, got {len(labels):,} ({source})"
        )
