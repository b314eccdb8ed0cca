"""Where the native first-block kernel pays: whole runs with it, without it, and as measured.

    python benchmarks/fused_stem.py --rounds 3 --filters 8 32

For each first-block width, a cnn on 1,000 Fashion-MNIST training images for 2 epochs (batch
64, fp32, the full test set evaluated once) is trained three ways, alternating, untracked: the
kernel wherever it fits (`CNNLAB_FUSED_STEM=always`), PyTorch's own ops (`train.fused_stem=
false`), and the default, where the run times one training step of its first block both ways
and keeps the faster (cnnlab.fusion.kernel_pays). Prints one JSON line: each way's median wall
seconds per run, the kernel's and the default's ratio to PyTorch's ops, and what the default
chose. A first round of each way is not counted: imports, the kernel's build, the measurement.
"""

from __future__ import annotations

import argparse
import os
import time

from _common import emit, median, note

from cnnlab.config import load_config
from cnnlab.fusion import ENV
from cnnlab.runs import train_run
from cnnlab.tracking import NoTracking

BASE = ["train.epochs=2", "train.batch_size=64", "train.precision=fp32", "data.train_limit=1000"]
WAYS = {"kernel": ("always", []), "pytorch": ("", ["train.fused_stem=false"]), "default": ("", [])}


def one_run(filters: int, way: str) -> tuple[float, tuple[str, ...]]:
    env, overrides = WAYS[way]
    os.environ[ENV] = env
    cfg = load_config(None, [*BASE, f"model.filters={filters}", *overrides])
    start = time.perf_counter()
    outcome = train_run(cfg, tracking=NoTracking())
    return time.perf_counter() - start, outcome.result.compute.fused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--filters", type=int, nargs="+", default=[8, 32])
    args = parser.parse_args()
    results = {}
    for filters in args.filters:
        times: dict[str, list[float]] = {way: [] for way in WAYS}
        chosen: tuple[str, ...] = ()
        for round_ in range(args.rounds + 1):
            for way in WAYS:
                seconds, fused = one_run(filters, way)
                note(f"filters {filters} round {round_} {way}: {seconds:.2f} s {fused}")
                if round_:
                    times[way].append(round(seconds, 3))
                if way == "default":
                    chosen = fused
        med = {way: median(values) for way, values in times.items()}
        results[f"filters_{filters}"] = {
            "median_s": med,
            "kernel_vs_pytorch": round(med["kernel"] / med["pytorch"], 2),
            "default_vs_pytorch": round(med["default"] / med["pytorch"], 2),
            "default_chose": list(chosen) or "PyTorch's ops",
            "all_s": times,
        }
    emit({"benchmark": "fused_stem", "rounds": args.rounds, "results": results})


if __name__ == "__main__":
    main()
