"""Parse and verify one gzip'd IDX file (Fashion-MNIST, MNIST, KMNIST).

    images, sha = verify_bytes(path.read_bytes(), spec, path.name, str(path))

Every check raises DataError with one line: the file, the check, expected vs actual, the path.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch


class DataError(Exception):
    """Data that cannot be found, fetched or trusted; the message is one line (CLI exit code 3)."""


@dataclass(frozen=True)
class FileSpec:
    """What one file must hold."""

    magic: int  # 2051 for images, 2049 for labels
    count: int  # number of images or labels
    sha256: str  # of what `hashed` names
    side: int = 28  # image height and width, pixels
    classes: int = 10  # labels are 0..classes-1
    # "payload": the decompressed bytes (Debian recompresses Fashion-MNIST, so its .gz differs
    # from the mirror's); "file": the .gz as the mirror serves it (the published checksums).
    hashed: Literal["payload", "file"] = "payload"

    @property
    def is_images(self) -> bool:
        return self.magic == IMAGES_MAGIC

    @property
    def header(self) -> int:
        """Bytes before the data: magic plus one big-endian int32 per dimension."""
        return 16 if self.is_images else 8

    @property
    def payload_bytes(self) -> int:
        per_item = self.side * self.side if self.is_images else 1
        return self.header + self.count * per_item


IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

# The four files of an IDX dataset by kind (the file stem), in the order data checksums use.
KINDS: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def file_name(kind: str) -> str:
    return f"{kind}.gz"


def verify_bytes(raw: bytes, spec: FileSpec, name: str, where: str) -> tuple[torch.Tensor, str]:
    """Check and parse one file's gzip bytes: (uint8 [n, side, side] images or int64 [n] labels,
    the sha256 that `spec.hashed` names); `name` and `where` go into the messages."""
    payload = _decompress(raw, name, where)
    _check_header(payload, spec, name, where)
    tensor = _parse(payload, spec)
    if not spec.is_images:
        top = int(tensor.max()) if len(tensor) else 0
        if top >= spec.classes:
            raise _error(name, "labels", f"0..{spec.classes - 1}", top, where)
    return tensor, check_sha256(raw if spec.hashed == "file" else payload, spec, name, where)


def check_sha256(data: bytes, spec: FileSpec, name: str, where: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        what = "file" if spec.hashed == "file" else "decompressed payload"
        raise _error(name, f"SHA-256 of the {what}", spec.sha256, digest, where)
    return digest


def read_file(path: Path, name: str) -> bytes:
    """The file's bytes; DataError with one line when it cannot be read."""
    return _read(path, name, str(path))


def _error(name: str, check: str, expected: object, got: object, where: str) -> DataError:
    return DataError(f"{name}: {check}: expected {expected}, got {got} ({where})")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _read(path: Path, name: str, where: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        detail = exc.strerror or _one_line(exc)
        raise _error(name, "read", "a readable file", detail, where) from None


def _decompress(raw: bytes, name: str, where: str) -> bytes:
    # gzip.decompress(b"") is b"", so an empty file would otherwise pass as an empty stream.
    if not raw:
        raise _error(name, "gzip", "a gzip stream", "an empty file", where)
    try:
        return gzip.decompress(raw)
    except (gzip.BadGzipFile, EOFError, OSError, zlib.error) as exc:
        raise _error(name, "gzip", "a complete gzip stream", _one_line(exc), where) from None


def _check_header(payload: bytes, spec: FileSpec, name: str, where: str) -> None:
    """Magic, dims, count and exact length, in that order, before any data is touched."""
    if len(payload) < spec.header:
        raise _error(name, "IDX header", f"{spec.header} bytes", f"{len(payload)} bytes", where)
    magic, count = struct.unpack_from(">II", payload, 0)
    if magic != spec.magic:
        raise _error(name, "IDX magic", spec.magic, magic, where)
    if spec.is_images:
        dims = struct.unpack_from(">II", payload, 8)
        if dims != (spec.side, spec.side):
            got = "x".join(map(str, dims))
            raise _error(name, "image dims", f"{spec.side}x{spec.side}", got, where)
    if count != spec.count:
        raise _error(name, "count", f"{spec.count:,}", f"{count:,}", where)
    if len(payload) != spec.payload_bytes:
        got = f"{len(payload):,} bytes"
        raise _error(name, "decompressed length", f"{spec.payload_bytes:,} bytes", got, where)


def _parse(payload: bytes, spec: FileSpec) -> torch.Tensor:
    # frombuffer over bytes is read-only; the copy gives torch memory it may own and write.
    data = np.frombuffer(payload, dtype=np.uint8, offset=spec.header)
    if spec.is_images:
        return torch.from_numpy(data.reshape(spec.count, spec.side, spec.side).copy())
    return torch.from_numpy(data.astype(np.int64))
