"""What Ray costs on one machine: the same small study with `--jobs 1`, `--jobs 2` and
`--ray local`, each into a fresh store, in rounds that alternate the three.

    python benchmarks/ray_overhead.py --rounds 3

Each timing is `cnnlab study` in a fresh process, from its start to its report, as a user
runs it: imports, data, every run, the report; with `--ray local` also the start and stop of
a one-machine Ray cluster and its worker processes (each imports torch and cnnlab once). The
study: two variants x `--seeds` seeds of a small CNN on `--train-limit` images for
`--epochs` epochs, train.threads = 1 so that each run asks one CPU of Ray. Prints one JSON
line: median wall seconds of each way and the ratios to `--jobs 1`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, median, note

STEP = """
[step]
kind = "train"
description = "Two widths."
seeds = {seeds}
variants = [{{ name = "narrow", set = ["model.filters=8"] }}, {{ name = "wide" }}]

[data]
train_limit = {train_limit}
val_fraction = 0.1

[model]
filters = 16
hidden_units = [64]

[train]
epochs = {epochs}
threads = 1
"""
WAYS = {"jobs 1": ["--jobs", "1"], "jobs 2": ["--jobs", "2"], "ray local": ["--ray", "local"]}


def timed(args, way: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "study"
        study.mkdir()
        step = STEP.format(seeds=args.seeds, train_limit=args.train_limit, epochs=args.epochs)
        (study / "1-widths.toml").write_text(step)
        argv = [sys.executable, "-m", "cnnlab.cli", "study", str(study), "--quiet", *way]
        argv += ["--tracking-uri", f"sqlite:///{tmp}/runs/mlflow.db", "--out", f"{tmp}/report"]
        started = time.perf_counter()
        subprocess.run(
            argv, check=True, cwd=tmp, env={**os.environ, "RAY_DISABLE_USAGE_STATS": "1"}
        )
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {way: [] for way in WAYS}
    for r in range(args.rounds):
        for way, flags in WAYS.items():
            seconds[way].append(timed(args, flags))
            note(f"round {r + 1}: {way}: {seconds[way][-1]:.1f} s")
    medians = {way: round(median(values), 2) for way, values in seconds.items()}
    emit(
        {
            "benchmark": "ray_overhead",
            "runs": 2 * args.seeds,
            "median_s": medians,
            "ratio_to_jobs_1": {w: round(m / medians["jobs 1"], 3) for w, m in medians.items()},
            "seconds": seconds,
        }
    )


if __name__ == "__main__":
    main()
