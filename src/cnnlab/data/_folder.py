"""A folder of PNG/JPEG images as a dataset, decoded once and then read from the user cache.

    raw = load_folder("~/leaves", image_size=(64, 64), test_fraction=0.2, seed=42)

Layout: `<path>/<class>/<image>`, or `<path>/train/<class>/...` with `<path>/test/<class>/...`.
Without a test half, a seeded share of the images is held out as the test set (RawData.note
says so). Images are read in file-name order across the classes. Grayscale images give one
channel; if any image has colour, every image is RGB.
The decoded images are cached as one uint8 array keyed by the folder's content (each file's
path, size and modification time) and `image_size`, written whole or not at all, so a second
run reads one file. Hidden files and folders (".DS_Store", ".ipynb_checkpoints") are skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnlab._cache import cache_root
from cnnlab.data._builtin import RawData
from cnnlab.data._idx import DataError

log = logging.getLogger(__name__)

FORMATS = ("PNG", "JPEG")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_CACHE_VERSION = "1"  # part of the key: a change to decoding invalidates old entries


@dataclass(frozen=True)
class _Half:
    root: Path
    files: list[tuple[str, int]]  # (file path, class index), in file-name order
    stamps: list[str]  # "relative path, size, mtime" per file: what the cache key hashes


def load_folder(
    path: str | Path, image_size: tuple[int, int] | None, test_fraction: float, seed: int
) -> RawData:
    """The folder's images as RawData (uint8 [N, C, H, W]); DataError names the file and check."""
    root = Path(path).expanduser()
    classes, train, test = _scan(root)
    key = _content_key([train, test], image_size)
    cached = cache_root() / "folders" / f"{key}.npz"
    arrays = _read_cache(cached)
    if arrays is None:
        arrays = _decode_and_cache(root, classes, train, test, image_size, cached)
    raw = RawData(
        train_images=torch.from_numpy(arrays["train_x"]),
        train_labels=torch.from_numpy(arrays["train_y"]),
        test_images=torch.from_numpy(arrays["test_x"]),
        test_labels=torch.from_numpy(arrays["test_y"]),
        source=root,
        checksum=str(arrays["checksum"]),
        class_names=[str(name) for name in arrays["class_names"]],
        name="folder",
    )
    return raw if test is not None else _hold_out(raw, test_fraction, seed)


# ---------------------------------------------------------------- layout


def _scan(root: Path) -> tuple[list[str], _Half, _Half | None]:
    if not root.is_dir():
        raise DataError(f"{root}: data.path: expected a folder of images, got no such folder")
    if (root / "train").is_dir():
        train_root, test_root = root / "train", root / "test"
        test_root = test_root if test_root.is_dir() else None
    else:
        train_root, test_root = root, None
    classes = _class_folders(train_root)
    if len(classes) < 2:
        got = f"{len(classes)} ({', '.join(classes)})" if classes else "none"
        raise DataError(f"{train_root}: classes: expected at least 2 class folders, got {got}")
    train = _half(root, train_root, classes)
    if test_root is None:
        return classes, train, None
    test_classes = _class_folders(test_root)
    for name in classes:
        if name not in test_classes:
            raise DataError(
                f"{test_root / name}: test half: expected a folder for every training class, "
                f"got none for class {name!r}"
            )
    for name in test_classes:
        if name not in classes:
            raise DataError(
                f"{test_root / name}: test half: expected only the training classes, "
                f"got class {name!r} that training does not have"
            )
    return classes, train, _half(root, test_root, classes)


def _visible(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def _class_folders(folder: Path) -> list[str]:
    names = []
    for entry in _visible(folder):
        if not entry.is_dir():
            raise DataError(
                f"{folder / entry.name}: layout: expected one folder per class here, got a file"
            )
        names.append(entry.name)
    return names


def _half(root: Path, half_root: Path, classes: list[str]) -> _Half:
    """Every image as (path, class index), in file-name order across the classes (ties by
    class): a folder exported with numbered names keeps its source's order, so the seeded
    validation split picks the images it would pick from the source itself."""
    found = []
    for index, name in enumerate(classes):
        entries = _visible(half_root / name)
        if not entries:
            raise DataError(
                f"{half_root / name}: class folder: expected images, got an empty folder"
            )
        for entry in entries:
            if not entry.is_file():
                raise DataError(
                    f"{half_root / name / entry.name}: class folder: expected image files, "
                    "got a folder"
                )
            found.append((entry.name, index, entry))
    found.sort(key=lambda item: item[:2])
    # Plain strings: 70,000 Path objects would take longer than reading the cache.
    prefix = "" if half_root == root else f"{half_root.name}/"
    files = [(entry.path, index) for _, index, entry in found]
    stamps = []
    for name, index, entry in found:
        stat = entry.stat()
        stamps.append(f"{prefix}{classes[index]}/{name}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return _Half(half_root, files, stamps)


def _content_key(halves: list[_Half | None], image_size) -> str:
    digest = hashlib.sha256(f"{_CACHE_VERSION}\0{image_size}\n".encode())
    for half in halves:
        digest.update("\n".join(half.stamps if half else ()).encode())
        digest.update(b"\n\0")  # where one half ends
    return digest.hexdigest()


# ---------------------------------------------------------------- decoding and the cache


def _decode_and_cache(root, classes, train, test, image_size, cached: Path) -> dict:
    first = _decode_half(root, train, image_size, None)
    second = _decode_half(root, test, image_size, first[2]) if test else None
    colour = first[0].shape[-1] == 3 or (second is not None and second[0].shape[-1] == 3)
    train_x = _nchw(first[0], colour)
    test_x = _nchw(second[0], colour) if second else np.zeros((0, *train_x.shape[1:]), np.uint8)
    test_y = second[1] if second else np.zeros(0, np.int64)
    arrays = {
        "train_x": train_x,
        "train_y": first[1],
        "test_x": test_x,
        "test_y": test_y,
        "class_names": np.array(classes),
    }
    arrays["checksum"] = np.array(_pixels_checksum(arrays))
    _write_cache(cached, arrays)
    return arrays


def _decode_half(root: Path, half: _Half, image_size, reference):
    """(uint8 [N, H, W] or [N, H, W, 3], int64 labels, (size, file) the others must match)."""
    images = []
    for path, _ in half.files:
        image = _decode(path, root, image_size)
        if reference is None:
            reference = (image.shape[:2], path)
        elif image.shape[:2] != reference[0]:
            expected = "x".join(map(str, reference[0][::-1]))
            got = "x".join(map(str, image.shape[:2][::-1]))
            like = os.path.basename(reference[1])
            raise DataError(
                f"{path}: image size: expected {expected} like {like}, got {got} "
                "(set data.image_size to resize every image)"
            )
        images.append(image)
    if any(image.ndim == 3 for image in images):
        images = [np.repeat(i[:, :, None], 3, axis=2) if i.ndim == 2 else i for i in images]
    labels = np.array([index for _, index in half.files], dtype=np.int64)
    return np.stack(images), labels, reference


def _decode(path: str, root: Path, image_size) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path, formats=FORMATS) as image:
            image.load()
            mode = "L" if image.mode in _GRAY_MODES else "RGB"
            image = image.convert(mode) if image.mode != mode else image
            if image_size and image.size != (image_size[1], image_size[0]):
                image = image.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except UnidentifiedImageError:
        raise DataError(f"{path}: image: expected a PNG or JPEG file, got another kind") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"{path}: image: expected a complete image, got {detail}") from None


def _nchw(images: np.ndarray, colour: bool) -> np.ndarray:
    if images.ndim == 3:  # grayscale [N, H, W]
        images = images[:, None]
        return np.ascontiguousarray(np.repeat(images, 3, axis=1)) if colour else images
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def _pixels_checksum(arrays: dict) -> str:
    digest = hashlib.sha256()
    for name in ("train_x", "train_y", "test_x", "test_y"):
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    digest.update("\0".join(arrays["class_names"].tolist()).encode())
    return digest.hexdigest()


def _read_cache(cached: Path) -> dict | None:
    if not cached.is_file():
        return None
    try:
        with np.load(cached, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError, KeyError) as exc:  # unreadable: decode again and replace it
        log.warning("ignoring the unreadable folder cache %s (%s)", cached, exc)
        return None


def _write_cache(cached: Path, arrays: dict) -> None:
    """Atomically: a temporary file in the same folder, renamed over the final name once whole.
    A cache that cannot be written costs the next run a decode, never this run."""
    part = None
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, part = tempfile.mkstemp(prefix=cached.stem, suffix=".part", dir=cached.parent)
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **arrays)
        os.replace(part, cached)
        part = None
    except OSError as exc:
        log.warning("could not cache the decoded folder in %s (%s)", cached.parent, exc)
    finally:
        if part is not None:
            Path(part).unlink(missing_ok=True)


# ---------------------------------------------------------------- the held-out test set


def _hold_out(raw: RawData, test_fraction: float, seed: int) -> RawData:
    n = len(raw.train_images)
    n_test = round(n * test_fraction)
    if not 0 < n_test < n:
        raise DataError(
            f"{raw.source}: data.test_fraction: expected to hold out between 1 and {n - 1:,} of "
            f"the {n:,} images (the folder has no test/ half), got {n_test:,}"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test, train = perm[:n_test], perm[n_test:]
    raw.test_images, raw.test_labels = raw.train_images[test], raw.train_labels[test]
    raw.train_images, raw.train_labels = raw.train_images[train], raw.train_labels[train]
    raw.note = (
        f"no test/ half in {raw.source}: {n_test:,} of its {n:,} images "
        f"({test_fraction:.0%}, data.split_seed {seed}) held out as the test set"
    )
    return raw
