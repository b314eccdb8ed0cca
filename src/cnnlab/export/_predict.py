"""Classify image files with a run's model: PNG/JPEG files, or the images of an IDX file.

    for p in predict_files("3f2a...", ["shoe.png", "t10k-images-idx3-ubyte.gz"]):
        print(p.source, p.class_name, p.probability)

An image must have the model's size; a grayscale image feeds a colour model as three equal
channels, while a colour image is refused by a grayscale model rather than silently greyed.
Bad files raise DataError with one line naming the file and the check.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnlab.data import DataError
from cnnlab.export._files import RunModel, run_model

_BATCH = 1000  # images per forward pass


@dataclass
class FilePrediction:
    source: str  # the file, with "[i]" for the i-th image of an IDX file
    class_index: int
    class_name: str
    probability: float
    probabilities: dict[str, float] = field(repr=False)  # every class, in the model's order

    def to_dict(self) -> dict:
        return {
            "file": self.source,
            "class": self.class_name,
            "class_index": self.class_index,
            "probability": self.probability,
            "probabilities": self.probabilities,
        }


def predict_files(
    run: str | RunModel,
    paths: list[str | Path],
    *,
    tracking_uri: str | None = None,
    runs_dir: str = "cnnlab-runs",
) -> list[FilePrediction]:
    """One prediction per image, in the order given; every file is read before any is predicted."""
    model = (
        run
        if isinstance(run, RunModel)
        else run_model(run, tracking_uri=tracking_uri, runs_dir=runs_dir)
    )
    sources, images = [], []
    for path in map(Path, paths):
        for name, image in read_images(path, model.input_shape):
            sources.append(name)
            images.append(image)
    if not images:
        return []
    batch = np.stack(images).astype(np.float32)
    with torch.no_grad():
        probs = torch.cat([model.net(torch.from_numpy(b)) for b in _chunks(batch)]).numpy()
    return [_prediction(source, p, model.class_names) for source, p in zip(sources, probs)]


def read_images(path: Path, shape: tuple[int, int, int]) -> list[tuple[str, np.ndarray]]:
    """(label, uint8 [C, H, W]) per image in the file, checked against the model's shape."""
    if not path.is_file():
        raise DataError(f"{path}: read: expected an image or IDX file, got no such file")
    if _is_idx(path):
        images = _idx_images(path)
        if images.shape[1:] != shape[1:] or shape[0] != 1:
            raise _size_error(path, shape, (1, *images.shape[1:]))
        return [(f"{path}[{i}]", image[None]) for i, image in enumerate(images)]
    return [(str(path), _image(path, shape))]


def _image(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path, formats=("PNG", "JPEG")) as image:
            image.load()
            colour = image.mode not in {"1", "L", "LA", "I", "I;16", "F"}
            array = np.asarray(image.convert("RGB" if colour else "L"), dtype=np.uint8)
    except UnidentifiedImageError:
        raise DataError(
            f"{path}: image: expected a PNG, JPEG or IDX file, got another kind"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"{path}: image: expected a complete image, got {detail}") from None
    chw = array.transpose(2, 0, 1) if colour else array[None]
    if colour and shape[0] == 1:
        raise DataError(
            f"{path}: channels: expected a grayscale image (the model takes 1 channel), "
            "got a colour one"
        )
    if chw.shape[1:] != shape[1:]:
        raise _size_error(path, shape, chw.shape)
    return np.repeat(chw, shape[0], axis=0) if chw.shape[0] != shape[0] else chw


def _is_idx(path: Path) -> bool:
    """By content: gzip (an IDX file is the only compressed input) or the IDX images magic."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head[:2] == b"\x1f\x8b" or (len(head) == 4 and struct.unpack(">I", head)[0] == 2051)


def _idx_images(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    try:
        payload = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (gzip.BadGzipFile, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: gzip: expected a complete gzip stream, got {exc}") from None
    if len(payload) < 16 or struct.unpack_from(">I", payload)[0] != 2051:
        raise DataError(f"{path}: IDX: expected an images file (magic 2051), got another file")
    count, h, w = struct.unpack_from(">III", payload, 4)
    if len(payload) != 16 + count * h * w:
        got = f"{len(payload):,} bytes"
        raise DataError(f"{path}: IDX length: expected {16 + count * h * w:,} bytes, got {got}")
    return np.frombuffer(payload, dtype=np.uint8, offset=16).reshape(count, h, w)


def _size_error(path: Path, expected, got) -> DataError:
    want = "x".join(map(str, expected))
    have = "x".join(map(str, got))
    return DataError(f"{path}: image size: expected {want} (channels x height x width), got {have}")


def _chunks(batch: np.ndarray):
    for start in range(0, len(batch), _BATCH):
        yield batch[start : start + _BATCH]


def _prediction(source: str, probs: np.ndarray, class_names: list[str]) -> FilePrediction:
    best = int(probs.argmax())
    every = {name: float(p) for name, p in zip(class_names, probs)}
    return FilePrediction(source, best, class_names[best], float(probs[best]), every)
