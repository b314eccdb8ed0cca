"""Helpers for the data tests: the registry pointed elsewhere, small files in real formats."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cnnlab.data import KINDS, REGISTRY
from cnnlab.data._cifar import ArchiveSpec
from cnnlab.data._idx import IMAGES_MAGIC, LABELS_MAGIC, FileSpec


def use_system_dir(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Fashion-MNIST's OS package directory, as the search order sees it, is `path`."""
    spec = replace(REGISTRY["fashion-mnist"], system_dirs=(path,))
    monkeypatch.setitem(REGISTRY, "fashion-mnist", spec)


def idx_gz(tensor: torch.Tensor) -> bytes:
    """uint8 images [n, h, w] or labels [n] as a gzip'd IDX file."""
    if tensor.dim() == 3:
        header = struct.pack(">IIII", IMAGES_MAGIC, *tensor.shape)
    else:
        header = struct.pack(">II", LABELS_MAGIC, len(tensor))
    return gzip.compress(header + tensor.to(torch.uint8).numpy().tobytes(), compresslevel=1)


def idx_files(train_x, train_y, test_x, test_y) -> dict[str, bytes]:
    """The four files of an IDX dataset (MNIST's and KMNIST's format) by file name."""
    tensors = (train_x, train_y, test_x, test_y)
    return {f"{kind}.gz": idx_gz(t) for kind, t in zip(KINDS, tensors)}


def cifar_tar_gz(train_x, train_y, test_x, test_y, members: int = 5) -> tuple[bytes, ArchiveSpec]:
    """CIFAR-10's binary distribution in small: `members` training files and one test file of
    label-then-pixels records, in a tar.gz; and the spec that describes it."""
    per = len(train_x) // members
    assert per * members == len(train_x) == len(train_y) and len(test_x) == per
    train = tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, members + 1))
    test = ("cifar-10-batches-bin/test_batch.bin",)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        chunks = [
            (train_x[i * per : (i + 1) * per], train_y[i * per : (i + 1) * per])
            for i in range(members)
        ]
        for name, (x, y) in zip((*train, *test), [*chunks, (test_x, test_y)]):
            data = records(x, y)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        readme = b"airplane\nautomobile\n"
        info = tarfile.TarInfo("cifar-10-batches-bin/batches.meta.txt")
        info.size = len(readme)
        archive.addfile(info, io.BytesIO(readme))
    raw = out.getvalue()
    return raw, ArchiveSpec(hashlib.sha256(raw).hexdigest(), train, test, records=per)


def records(images: torch.Tensor, labels: torch.Tensor) -> bytes:
    flat = images.reshape(len(images), -1).to(torch.uint8)
    return torch.cat([labels.to(torch.uint8)[:, None], flat], dim=1).numpy().tobytes()


def register_idx(monkeypatch, name: str, files: dict[str, bytes], counts: tuple[int, int]):
    """The registry's `name` now describes these files (hashes of the files as served)."""
    spec = REGISTRY[name]
    train, test = counts
    specs = {}
    for (file, raw), count in zip(files.items(), (train, train, test, test)):
        magic = IMAGES_MAGIC if "images" in file else LABELS_MAGIC
        specs[file] = FileSpec(magic, count, hashlib.sha256(raw).hexdigest(), hashed="file")
    monkeypatch.setitem(REGISTRY, name, replace(spec, files=specs))


def register_cifar(monkeypatch, archive: ArchiveSpec) -> None:
    spec = REGISTRY["cifar-10"]
    monkeypatch.setitem(REGISTRY, "cifar-10", replace(spec, files={spec.file_names[0]: archive}))


def tinted(images: torch.Tensor, side: int = 32) -> torch.Tensor:
    """uint8 [n, 1, 28, 28] grayscale -> [n, 3, side, side] colour: padded, one tint per channel."""
    pad = (side - images.shape[-1]) // 2
    x = torch.nn.functional.pad(images.float(), (pad, pad, pad, pad))
    tint = torch.tensor([1.0, 0.7, 0.4]).view(1, 3, 1, 1)
    return (x * tint).round().to(torch.uint8)


def write_folder(root: Path, images: torch.Tensor, labels: torch.Tensor, fmt: str = "png"):
    """uint8 [n, C, H, W] images as files root/<class>/<index>.<fmt>, classes named "0-c".."9-c"
    so that name order is label order; returns the class names."""
    from PIL import Image

    classes = [f"{i}-c" for i in range(int(labels.max()) + 1)]
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
    for index, (image, label) in enumerate(zip(images, labels.tolist())):
        array = image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()
        Image.fromarray(array).save(root / classes[label] / f"{index:05d}.{fmt}")
    return classes
