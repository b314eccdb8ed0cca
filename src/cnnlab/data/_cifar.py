"""Parse and verify CIFAR-10's binary distribution (cifar-10-binary.tar.gz) without unpacking it.

    (train_x, train_y, test_x, test_y), sha = verify_archive(raw, spec, name, where)

Each member is a run of fixed-size records: one label byte, then the 3x32x32 pixels as three
row-major planes (R, G, B). The binary distribution is used rather than the Python one because
loading that one unpickles, which can run code. Members are read from the archive in memory;
nothing is extracted, so no name inside the archive ever becomes a path on disk.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from cnnlab.data._idx import DataError

_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)


@dataclass(frozen=True)
class ArchiveSpec:
    """What the archive must hold; the hash is of the .tar.gz as the mirror serves it."""

    sha256: str
    train: tuple[str, ...]  # members holding the training records, in order
    test: tuple[str, ...]  # members holding the test records, in order
    records: int = 10_000  # per member
    shape: tuple[int, int, int] = (3, 32, 32)  # channels, height, width
    classes: int = 10  # labels are 0..classes-1

    @property
    def record_bytes(self) -> int:
        c, h, w = self.shape
        return 1 + c * h * w


Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def verify_archive(raw: bytes, spec: ArchiveSpec, name: str, where: str) -> tuple[Tensors, str]:
    """(train images uint8 [N, C, H, W], train labels int64 [N], test images, test labels), sha256.

    Every check raises DataError with one line: the file, the check, expected vs actual, where."""
    if not raw:
        raise _error(name, "gzip", "a gzip stream", "an empty file", where)
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as archive:
            train = [_member(archive, m, spec, name, where) for m in spec.train]
            test = [_member(archive, m, spec, name, where) for m in spec.test]
    except _ARCHIVE_ERRORS as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise _error(name, "archive", "a complete tar.gz archive", detail, where) from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.sha256:
        raise _error(name, "SHA-256 of the file", spec.sha256, digest, where)
    train_x, train_y = _join(train)
    test_x, test_y = _join(test)
    return (train_x, train_y, test_x, test_y), digest


def _member(archive: tarfile.TarFile, member: str, spec: ArchiveSpec, name: str, where: str):
    try:
        info = archive.getmember(member)
    except KeyError:
        raise _error(name, f"member {member}", "in the archive", "no such member", where) from None
    expected = spec.records * spec.record_bytes
    if not info.isfile() or info.size != expected:
        got = f"{info.size:,} bytes" if info.isfile() else "not a regular file"
        raise _error(name, f"member {member}", f"{expected:,} bytes", got, where)
    records = np.frombuffer(archive.extractfile(info).read(), dtype=np.uint8)
    records = records.reshape(spec.records, spec.record_bytes)
    top = int(records[:, 0].max())
    if top >= spec.classes:
        raise _error(name, f"labels in {member}", f"0..{spec.classes - 1}", top, where)
    images = records[:, 1:].reshape(spec.records, *spec.shape)
    return torch.from_numpy(images.copy()), torch.from_numpy(records[:, 0].astype(np.int64))


def _join(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _error(name: str, check: str, expected: object, got: object, where: str) -> DataError:
    return DataError(f"{name}: {check}: expected {expected}, got {got} ({where})")
