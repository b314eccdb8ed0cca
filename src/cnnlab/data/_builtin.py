"""Find, verify and load a built-in dataset (the registry's entries).

    raw = load_dataset("kmnist")        # finds the files, downloading them if need be
    raw.train_images.shape, raw.checksum
    for report in verify_all("/data/fashion-mnist"): print(report.name, report.sha256)

Search order: the `data_dir` argument, else the dataset's environment variable
($CNNLAB_DATA_DIR for Fashion-MNIST; either is authoritative: no fallback), then the directories
an OS package fills (Debian's for Fashion-MNIST), then the user cache; a directory counts only
if it holds every file. Failing all, the missing files are downloaded into the cache.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cnnlab.data import _download
from cnnlab.data._cifar import verify_archive
from cnnlab.data._idx import DataError, read_file, verify_bytes
from cnnlab.data._registry import DatasetSpec, dataset_spec

FASHION_MNIST = "fashion-mnist"


@dataclass
class RawData:
    """A dataset's images and labels, parsed and verified; nothing split or normalized yet."""

    train_images: torch.Tensor = field(repr=False)  # uint8 [N, C, H, W]
    train_labels: torch.Tensor = field(repr=False)  # int64 [N]
    test_images: torch.Tensor = field(repr=False)  # uint8 [M, C, H, W]
    test_labels: torch.Tensor = field(repr=False)  # int64 [M]
    source: Path  # the directory the files were read from
    checksum: str  # sha256 over the files' hashes (or a folder's pixels): a data fingerprint
    class_names: list[str]
    name: str = FASHION_MNIST  # the `data.dataset` it came from
    note: str = ""  # how the test set came about, when that is not the files' own test half


@dataclass
class FileReport:
    """One verified file, as `cnnlab data --verify` prints it."""

    name: str  # file name, e.g. train-images-idx3-ubyte.gz
    path: Path
    count: int  # images or labels in the file (an archive: its images)
    sha256: str  # of what the registry hashes: the payload or the file
    bytes: int  # size of the file on disk


def find_data_dir(
    data_dir: str | Path | None = None, download: bool = True, dataset: str = FASHION_MNIST
) -> Path:
    """The directory holding all the dataset's files; downloads into the cache when none has."""
    spec = dataset_spec(dataset)
    explicit = data_dir if data_dir not in (None, "") else os.environ.get(spec.dir_env)
    if explicit:
        path = Path(explicit).expanduser()
        missing = _missing(spec, path)
        if missing:
            name = missing[0]
            raise DataError(
                f"{name}: data dir: expected the file in {path}, got no such file ({path / name})"
            )
        return path
    cache = _download.cache_dir(spec.name)
    for candidate in (*spec.system_dirs, cache):
        if not _missing(spec, candidate):
            return candidate
    missing = _missing(spec, cache)
    if not download:
        places = " or ".join(str(p) for p in (*spec.system_dirs, cache))
        raise DataError(
            f"{missing[0]}: data dir: expected the file in {places}, got no such file "
            f"(download is off; set {spec.dir_env} or allow the download)"
        )
    mirror = _download.mirror_url(spec.mirror_env, spec.mirror)
    _download.download(missing, cache, mirror, lambda raw, name, url: _verify(spec, raw, name, url))
    return cache


def load_dataset(
    dataset: str = FASHION_MNIST, data_dir: str | Path | None = None, download: bool = True
) -> RawData:
    """Find, verify and parse every file (about a second for Fashion-MNIST's 55 MB of pixels)."""
    spec = dataset_spec(dataset)
    source = find_data_dir(data_dir, download, dataset)
    parsed = [
        _verify(spec, read_file(source / name, name), name, str(source / name))
        for name in spec.file_names
    ]
    hashes = [digest for _, digest in parsed]
    if spec.format == "cifar":  # one archive; labels travel inside the records
        train_x, train_y, test_x, test_y = parsed[0][0]
    else:
        train_x, train_y, test_x, test_y = (tensor for tensor, _ in parsed)
        train_x, test_x = train_x.unsqueeze(1), test_x.unsqueeze(1)
        names = spec.file_names
        _check_pair(train_x, train_y, source, names[0], names[1])
        _check_pair(test_x, test_y, source, names[2], names[3])
    return RawData(
        train_images=train_x,
        train_labels=train_y,
        test_images=test_x,
        test_labels=test_y,
        source=source,
        checksum=data_checksum(hashes),
        class_names=list(spec.class_names),
        name=spec.name,
    )


def load_fashion_mnist(data_dir: str | Path | None = None, download: bool = True) -> RawData:
    """load_dataset("fashion-mnist", ...)."""
    return load_dataset(FASHION_MNIST, data_dir, download)


def verify_all(
    data_dir: str | Path | None = None, download: bool = False, dataset: str = FASHION_MNIST
) -> list[FileReport]:
    """Verify every file of the dataset in full; the first bad one raises DataError."""
    spec = dataset_spec(dataset)
    source = find_data_dir(data_dir, download, dataset)
    reports = []
    for name in spec.file_names:
        path = source / name
        raw = read_file(path, name)
        tensor, digest = _verify(spec, raw, name, str(path))
        count = len(tensor[0]) + len(tensor[2]) if spec.format == "cifar" else len(tensor)
        reports.append(FileReport(name, path, count, digest, len(raw)))
    return reports


def verify_file(path: str | Path, kind: str, dataset: str = FASHION_MNIST):
    """One IDX file of a built-in dataset by its kind (e.g. "t10k-labels-idx1-ubyte"):
    (uint8 [n, 28, 28] images or int64 [n] labels, sha256)."""
    spec = dataset_spec(dataset)
    name = f"{kind}.gz"
    if spec.format != "idx" or name not in spec.files:
        kinds = ", ".join(n.removesuffix(".gz") for n in spec.file_names)
        raise ValueError(f"unknown file kind {kind!r}; expected one of {kinds}")
    path = Path(path)
    return _verify(spec, read_file(path, name), name, str(path))


def data_checksum(hashes: list[str]) -> str:
    """sha256 of the file hashes (hex) concatenated in the registry's order."""
    return hashlib.sha256("".join(hashes).encode("ascii")).hexdigest()


def _verify(spec: DatasetSpec, raw: bytes, name: str, where: str):
    if spec.format == "cifar":
        return verify_archive(raw, spec.files[name], name, where)
    return verify_bytes(raw, spec.files[name], name, where)


def _missing(spec: DatasetSpec, directory: Path) -> list[str]:
    return [name for name in spec.file_names if not (directory / name).is_file()]


def _check_pair(
    images: torch.Tensor, labels: torch.Tensor, source: Path, images_file: str, labels_file: str
) -> None:
    # Per-file counts are checked already; this guards the pairing should those checks change.
    if len(images) != len(labels):
        raise DataError(
            f"{labels_file}: count matches {images_file}: "
            f"expected {len(images):,}, got {len(labels):,} ({source})"
        )
