"""The benchmark scripts run and print their one JSON line (on tiny runs: nothing is timed here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(script: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,  # benchmarks/_common.py switches MLflow's telemetry off itself
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout  # progress goes to stderr
    record = json.loads(lines[0])
    assert record["machine"]["cores"] >= 1 and record["command"].startswith(f"benchmarks/{script}")
    return record


@pytest.mark.slow
def test_throughput_compares_both_loops_on_the_same_images():
    out = bench("throughput.py", "--rounds", "1", "--images", "6400")
    assert out["images_per_run"] == 6400 and out["rounds"] == 1
    assert out["reference_img_s"] > 0 and out["cnnlab_img_s"] > 0
    assert out["ratio"] == round(out["cnnlab_img_s"] / out["reference_img_s"], 2)
    assert 0.1 < out["reference_test_acc"] <= 1 and 0.1 < out["cnnlab_test_acc"] <= 1


def test_time_to_accuracy_reports_targets_not_reached_as_null():
    tiny = ["--set", "data.train_limit=1000", "train.batch_size=100"]
    out = bench("time_to_accuracy.py", "--epochs", "1", "--seeds", "1", *tiny)
    ((epochs, seconds, accuracy),) = out["runs"][0]
    assert epochs == 1 and seconds > 0 and 0.1 < accuracy < 0.9038
    assert out["seconds_to_90.38"] is None and out["accuracy_within_budget"] == accuracy


def test_tracking_overhead_pairs_tracked_and_untracked_runs():
    tiny = ["--set", "data.train_limit=1000", "train.epochs=1"]
    out = bench("tracking_overhead.py", "--rounds", "2", *tiny)
    runs = out["all_runs"]
    assert len(runs["untracked"]) == len(runs["tracked"]) == len(out["pairs_pct"]) == 2
    assert out["first_tracked_s"] > 0 and out["untracked_s"] > 0
