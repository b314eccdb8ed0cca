"""Parse and verify one gzip'd IDX file of Fashion-MNIST.

    images, sha = verify_file(Path(".../t10k-images-idx3-ubyte.gz"), "t10k-images-idx3-ubyte")

Every check raises DataError with one line: the file, the check, expected vs actual, the path.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


class DataError(Exception):
    """Data that cannot be found, fetched or trusted; the message is one line (CLI exit code 3)."""


@dataclass(frozen=True)
class FileSpec:
    """What one file must hold; the hash is of the decompressed payload (Debian recompresses)."""

    magic: int  # 2051 for images, 2049 for labels
    count: int  # number of images or labels
    sha256: str  # of the decompressed payload
    side: int = 28  # image height and width, pixels

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
NUM_CLASSES = 10

# The four files by kind (the file stem), in the fixed order the data checksum uses.
FILES: dict[str, FileSpec] = {
    "train-images-idx3-ubyte": FileSpec(
        IMAGES_MAGIC, 60_000, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
    ),
    "train-labels-idx1-ubyte": FileSpec(
        LABELS_MAGIC, 60_000, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
    ),
    "t10k-images-idx3-ubyte": FileSpec(
        IMAGES_MAGIC, 10_000, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
    ),
    "t10k-labels-idx1-ubyte": FileSpec(
        LABELS_MAGIC, 10_000, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
    ),
}
KINDS: tuple[str, ...] = tuple(FILES)


def file_name(kind: str) -> str:
    return f"{kind}.gz"


def verify_file(path: Path, kind: str) -> tuple[torch.Tensor, str]:
    """Read, check and parse one file: (uint8 [n, 28, 28] images or int64 [n] labels, sha256)."""
    path = Path(path)
    raw = _read(path, file_name(kind), str(path))
    return verify_bytes(raw, kind, file_name(kind), str(path))


def verify_bytes(raw: bytes, kind: str, name: str, where: str) -> tuple[torch.Tensor, str]:
    """verify_file on gzip bytes already in memory; `name` and `where` go into the messages."""
    if kind not in FILES:
        raise ValueError(f"unknown file kind {kind!r}; expected one of {', '.join(KINDS)}")
    spec = FILES[kind]
    payload = _decompress(raw, name, where)
    _check_header(payload, spec, name, where)
    tensor = _parse(payload, spec)
    if not spec.is_images:
        top = int(tensor.max()) if len(tensor) else 0
        if top >= NUM_CLASSES:
            raise _error(name, "labels", f"0..{NUM_CLASSES - 1}", top, where)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != spec.sha256:
        raise _error(name, "SHA-256 of the decompressed payload", spec.sha256, digest, where)
    return tensor, digest


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
