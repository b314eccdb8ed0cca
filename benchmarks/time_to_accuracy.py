"""Seconds to the study's best test accuracy (90.38%), to 93% and to 94.5%, and the accuracy
reached within a time budget, for a recipe such as configs/fast.toml.

    python benchmarks/time_to_accuracy.py --config configs/fast.toml --epochs 3,4 --seeds 3
    python benchmarks/time_to_accuracy.py --config configs/fast-10min.toml --epochs 40 --seeds 3

A one-cycle schedule only delivers its accuracy at its end, so each rung of `--epochs` is a whole
run of that length; the time to a target is the wall time (FitResult.seconds: training, any
validation and the test pass) of the shortest rung that reached it. Rungs stop once one overruns
the budget. Prints one JSON line with the median over seeds (a miss counts as never).
"""

from __future__ import annotations

import argparse
import math

from _common import emit, median, note

from cnnlab.config import load_config
from cnnlab.data import load_fashion_mnist, make_splits
from cnnlab.models import create_model
from cnnlab.training import fit, seed_everything

TARGETS = {"90.38": 0.9038, "93": 0.93, "94.5": 0.945}


def ladder(config: str, epochs: list[int], seed: int, budget: float, extra: list[str]):
    """(epochs, seconds, test accuracy) of each rung for one seed."""
    raw = load_fashion_mnist()
    rungs = []
    for n in epochs:
        cfg = load_config(config, [*extra, f"train.epochs={n}", f"train.seed={seed}"])
        splits = make_splits(raw, cfg.data.val_fraction, cfg.data.train_limit, seed)
        seed_everything(seed)
        result = fit(create_model(cfg.model), splits, cfg.train)
        rungs.append((n, round(result.seconds, 1), result.test_accuracy))
        note(f"seed {seed} epochs {n}: {result.seconds:.1f} s, test acc {result.test_accuracy:.4f}")
        if result.seconds > budget:
            break
    return rungs


def summarize(rungs, budget: float) -> dict[str, float]:
    out = {}
    for name, target in TARGETS.items():
        times = [s for _, s, acc in rungs if acc >= target]
        out[f"seconds_to_{name}"] = min(times) if times else math.inf
    within = [acc for _, s, acc in rungs if s <= budget]
    out["accuracy_within_budget"] = max(within) if within else math.nan
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/fast.toml")
    parser.add_argument("--epochs", default="3,4", help="comma-separated run lengths")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--budget-s", type=float, default=600.0, help="the time budget, seconds")
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides")
    args = parser.parse_args()
    epochs = [int(e) for e in args.epochs.split(",")]
    per_seed = [ladder(args.config, epochs, s, args.budget_s, args.set) for s in range(args.seeds)]
    summaries = [summarize(rungs, args.budget_s) for rungs in per_seed]
    record: dict[str, object] = {"benchmark": "time_to_accuracy", "config": args.config}
    for key in summaries[0]:
        value = median([s[key] for s in summaries])
        record[key] = None if math.isinf(value) else value  # JSON has no infinity: null = missed
    record.update(budget_s=args.budget_s, seeds=args.seeds, overrides=args.set, runs=per_seed)
    emit(record)


if __name__ == "__main__":
    main()
