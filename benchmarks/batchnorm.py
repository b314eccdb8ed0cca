"""What BatchNorm costs: the study's 6x6 model with and without it, whole runs, alternating.

    python benchmarks/batchnorm.py --seeds 3

The model and schedule of the study's step 4 (experiments/4-regularization.toml: 20 epochs of
100 steps of 64 images, 128,000 images), trained three ways per seed: without BatchNorm, with
it, and with it on PyTorch's own ops (`train.fused_stem=false`: no kernel, no folding). Prints
one JSON line: the median wall seconds of each (FitResult.seconds: training, validation every
epoch, the test pass), the ratios to the model without BatchNorm, every run's test accuracy and
images trained on, and the blocks each way ran fused (what makes the three ways differ).
A one-epoch run of each comes first and is not counted: imports, the kernel's build.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import emit, median, note

from cnnlab.config import apply_override, from_dict, to_dict
from cnnlab.data import load_splits
from cnnlab.runs import build
from cnnlab.study import load_step
from cnnlab.training import fit, seed_everything

WAYS = {
    "no_batchnorm": ["model.batchnorm=false"],
    "batchnorm": ["model.batchnorm=true"],
    "batchnorm_pytorch_ops": ["model.batchnorm=true", "train.fused_stem=false"],
}


def config(step, seed: int | None, overrides: list[str]):
    raw = to_dict(step.config(step.variants[0], False, seed))
    for item in overrides:
        apply_override(raw, item)
    return from_dict(raw)


def run(step, seed: int, overrides: list[str], splits):
    cfg = config(step, seed, overrides)
    seed_everything(cfg.train.seed)
    return fit(build(cfg).model, splits, cfg.train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step", default="experiments/4-regularization.toml")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides for every run")
    args = parser.parse_args()
    step = load_step(Path(args.step))
    base_cfg = config(step, None, args.set)
    splits = load_splits(base_cfg)
    t = base_cfg.train
    for overrides in WAYS.values():  # warm-up: imports, the kernel's build, first allocations
        run(step, 0, [*overrides, *args.set, "train.epochs=1"], splits)
    runs: dict[str, list[tuple[float, float]]] = {way: [] for way in WAYS}
    images_seen: dict[str, list[int]] = {way: [] for way in WAYS}
    fused: dict[str, list[str]] = {}
    for seed in range(1, args.seeds + 1):
        for way, overrides in WAYS.items():
            result = run(step, seed, [*overrides, *args.set], splits)
            seconds, accuracy = result.seconds, result.test_accuracy
            note(f"seed {seed} {way}: {seconds:.1f} s, test accuracy {accuracy:.4f}")
            runs[way].append((seconds, accuracy))
            images_seen[way].append(result.images_seen)
            fused[way] = list(result.compute.fused) if result.compute else []
    seconds = {way: median([s for s, _ in r]) for way, r in runs.items()}
    base = seconds["no_batchnorm"]
    emit(
        {
            "benchmark": "batchnorm",
            "images_per_run": t.epochs * t.steps_per_epoch * t.batch_size,
            "seeds": args.seeds,
            "median_seconds": {w: round(s, 2) for w, s in seconds.items()},
            "ratio_to_no_batchnorm": {w: round(s / base, 2) for w, s in seconds.items()},
            "median_test_accuracy": {w: median([a for _, a in r]) for w, r in runs.items()},
            "runs": runs,
            "images_seen": images_seen,
            "fused": fused,
        }
    )


if __name__ == "__main__":
    main()
