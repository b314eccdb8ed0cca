"""Seconds to load a folder of images: the first load (decode every PNG, write the cache) and
the second (read the cache), against loading the same images from Fashion-MNIST's IDX files.

    python benchmarks/folder_load.py --rounds 3            # all 70,000 images
    python benchmarks/folder_load.py --limit 2000          # a quick check

The folder is Fashion-MNIST written as PNG files, train/ and test/ halves with one sub-folder
per class, in a temporary directory; each round starts from an empty cache. The JSON gives the
images written and the images each load returned.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import emit, median, note

from cnnlab.data import load_fashion_mnist, load_folder


def write_png_folder(root: Path, limit: int) -> int:
    from PIL import Image

    raw = load_fashion_mnist()
    halves = (
        ("train", raw.train_images, raw.train_labels),
        ("test", raw.test_images, raw.test_labels),
    )
    written = 0
    for half, images, labels in halves:
        n = min(limit, len(images)) if limit else len(images)
        for c in range(len(raw.class_names)):
            (root / half / f"class-{c}").mkdir(parents=True)
        for i in range(n):
            path = root / half / f"class-{int(labels[i])}" / f"{i:05d}.png"
            Image.fromarray(images[i, 0].numpy()).save(path)
        written += n
    return written


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="images per half; 0 = all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "fashion-mnist-png"
        started = time.perf_counter()
        images = write_png_folder(folder, args.limit)
        note(f"wrote {images:,} PNG files in {time.perf_counter() - started:.1f} s")
        first, second, idx = [], [], []
        loaded: dict[str, list[int]] = {"first_load": [], "second_load": []}

        def load(which: str) -> None:
            raw = load_folder(folder, None, 0.2, 42)
            loaded[which].append(len(raw.train_images) + len(raw.test_images))

        for r in range(args.rounds):
            os.environ["CNNLAB_CACHE_DIR"] = str(Path(tmp) / f"cache-{r}")
            first.append(timed(lambda: load("first_load")))
            second.append(timed(lambda: load("second_load")))
            idx.append(timed(load_fashion_mnist))
            note(
                f"round {r + 1}: first {first[-1]:.2f} s, second {second[-1]:.2f} s, "
                f"IDX {idx[-1]:.2f} s"
            )
    emit(
        {
            "benchmark": "folder_load",
            "images": images,
            "rounds": args.rounds,
            "median_seconds": {
                "first_load": round(median(first), 2),
                "second_load": round(median(second), 2),
                "idx_load": round(median(idx), 2),
            },
            "all_runs": {"first_load": first, "second_load": second, "idx_load": idx},
            "images_loaded": loaded,
        }
    )


if __name__ == "__main__":
    main()
