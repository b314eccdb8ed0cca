"""The benchmark scripts run and print their one JSON line (on tiny runs: nothing is timed here),
and each measured what it says it measured: the images, runs or accuracy behind its timings.

Each script runs with the smallest arguments it takes: narrow models, a few steps, one thread
(OMP_NUM_THREADS for PyTorch's own loops, train.threads for cnnlab's: two stall where other
processes share the cores), and `train.fused_stem=false` where the test does not look at the
first block, which spares each process the seconds of timing the native kernel against
PyTorch's ops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD_UNFUSED = ["train.threads=1", "train.fused_stem=false"]


def bench(script: str, *args: str) -> dict:
    (record,) = bench_lines(script, *args)
    return record


def bench_lines(script: str, *args: str) -> list[dict]:
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,  # benchmarks/_common.py switches MLflow's telemetry off itself
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.strip().splitlines()]  # progress: stderr
    for record in records:
        assert record["machine"]["cores"] >= 1
        assert record["command"].startswith(f"benchmarks/{script}")
    return records


@pytest.mark.slow
def test_throughput_compares_both_loops_on_the_same_images():
    # 30 steps of 64 images (one epoch of 30 for cnnlab, as the reference's loop takes them) of
    # a narrow model: past chance on the test set (about 50%) in seconds.
    small = ["train.epochs=1", "train.steps_per_epoch=30", "train.threads=1", "model.filters=8"]
    small.append("model.hidden_units=[32]")
    out = bench("throughput.py", "--rounds", "1", "--images", "1920", "--set", *small)
    assert out["images_per_run"] == 1920 and out["rounds"] == 1
    assert out["reference_img_s"] > 0 and out["cnnlab_img_s"] > 0
    # The ratio comes from the unrounded speeds, the printed speeds are rounded.
    assert out["ratio"] == pytest.approx(out["cnnlab_img_s"] / out["reference_img_s"], abs=0.02)
    assert 0.1 < out["reference_test_acc"] <= 1 and 0.1 < out["cnnlab_test_acc"] <= 1


@pytest.mark.slow
def test_time_to_accuracy_reports_targets_not_reached_as_null():
    tiny = ["--set", "data.train_limit=1000", "train.batch_size=100", *ONE_THREAD_UNFUSED]
    out = bench("time_to_accuracy.py", "--epochs", "1", "--seeds", "1", *tiny)
    ((epochs, seconds, accuracy),) = out["runs"][0]
    assert epochs == 1 and seconds > 0 and 0.1 < accuracy < 0.9038
    assert out["seconds_to_90.38"] is None and out["accuracy_within_budget"] == accuracy


# One step of 128 images on a convnet of a quarter of the recipe's width.
TINY_RUN = ["data.train_limit=128", "train.epochs=1", "model.width=0.25", *ONE_THREAD_UNFUSED]


@pytest.mark.slow
def test_tracking_overhead_times_parallel_jobs_on_one_store():
    tiny = ["--set", *TINY_RUN]
    out = bench("tracking_overhead.py", "--rounds", "1", "--jobs", "2", *tiny)
    assert out["jobs"] == 2 and len(out["all_runs"]["tracked"]) == 1
    assert out["tracked_s"] > 0 and out["untracked_s"] > 0
    # Both jobs of the first and of the timed tracked round wrote their run; untracked, none.
    assert out["runs_in_store"] == 2 * (1 + 1)


@pytest.mark.slow
def test_tracking_overhead_pairs_tracked_and_untracked_runs():
    tiny = ["--set", *TINY_RUN]
    out = bench("tracking_overhead.py", "--rounds", "2", *tiny)
    runs = out["all_runs"]
    assert len(runs["untracked"]) == len(runs["tracked"]) == len(out["pairs_pct"]) == 2
    assert out["first_tracked_s"] > 0 and out["untracked_s"] > 0
    # Each round's overhead is its own tracked run against its own untracked one.
    pairs = [100 * (t - p) / p for p, t in zip(runs["untracked"], runs["tracked"], strict=True)]
    assert out["pairs_pct"] == [round(x, 1) for x in pairs]
    assert out["runs_in_store"] == 1 + 2  # the first tracked run and one per round


@pytest.mark.slow
def test_batchnorm_times_the_model_three_ways():
    tiny = ["--set", "train.epochs=1", "train.steps_per_epoch=5", "data.val_fraction=0.01"]
    # A narrow model: with the step's 64 filters each run's test pass (10,000 images) is slow.
    tiny += ["model.filters=8", "model.hidden_units=[16]", "train.threads=1"]
    out = bench("batchnorm.py", "--seeds", "1", *tiny)
    assert out["images_per_run"] == 5 * 64
    assert set(out["median_seconds"]) == {"no_batchnorm", "batchnorm", "batchnorm_pytorch_ops"}
    assert all(len(runs) == 1 for runs in out["runs"].values())
    # Every timed run trained on the images the config asks for, and the three ways differ as
    # named: BatchNorm in the first block, or not, or PyTorch's own ops with nothing fused.
    assert out["images_seen"] == {way: [5 * 64] for way in out["median_seconds"]}
    fused = out["fused"]
    assert fused["batchnorm_pytorch_ops"] == []
    assert any("batchnorm" in block for block in fused["batchnorm"])
    assert not any("batchnorm" in block for block in fused["no_batchnorm"])


@pytest.mark.slow
def test_study_time_prints_a_line_per_step_and_the_total(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    step = """
[step]
kind = "train"
variants = [{ name = "narrow", set = ["model.filters=4"] }, { name = "wide" }]
[data]
train_limit = 300
val_fraction = 0.02
[model]
filters = 8
hidden_units = [16]
[train]
epochs = 1
eval_batch_size = 500
threads = 1
fused_stem = false  # the kernel not timed in each worker
[tracking]
log_model = false  # what the steps cost is not checked here, only that they ran
"""
    for name in ("1-a", "2-b"):
        (folder / f"{name}.toml").write_text(step)
    lines = bench_lines("study_time.py", "--folder", str(folder), "--jobs", "2")
    assert [r["step"] for r in lines] == ["1-a", "2-b", "total"]
    assert [r["runs"] for r in lines] == [2, 2, 4]
    assert lines[-1]["seconds"] >= lines[0]["seconds"] + lines[1]["seconds"]
    assert all(r["jobs"] == 2 for r in lines) and lines[-1]["report_seconds"] > 0
    assert lines[-1]["finished_runs_in_store"] == 4  # the time went into four finished runs


def test_space_check_times_parses_and_checks_both_ways():
    out = bench("space_check.py", "--rounds", "1", "--samples", "20")
    assert out["samples"] == 20 and set(out["parse_ms"]) == set(out["check_s"]) == {
        "uncached",
        "cached",
    }
    # Both ways checked the same samples: the cache changes the time, never the outcome.
    assert len(out["invalid_share"]) == 1 and 0 <= out["invalid_share"][0] <= 1
    assert all(len(v) == 1 and v[0] > 0 for v in out["all_runs"]["check_s"].values())
    assert out["parse_ratio"] == round(out["parse_ms"]["uncached"] / out["parse_ms"]["cached"], 2)


def test_new_store_times_a_seeded_and_a_migrated_first_open():
    out = bench("new_store.py", "--rounds", "1")
    assert set(out["first_open_s"]) == {"migrated", "seeded"} and out["template_s"] > 0
    assert all(len(v) == 1 and v[0] > 0 for v in out["all_runs"].values())
    # Migrating every table takes longer than copying a migrated file, on any machine.
    assert out["first_open_s"]["migrated"] > out["first_open_s"]["seeded"]
    assert out["ratio"] == round(out["first_open_s"]["migrated"] / out["first_open_s"]["seeded"], 2)


@pytest.mark.slow
def test_folder_load_times_the_first_and_second_load():
    out = bench("folder_load.py", "--rounds", "1", "--limit", "200")
    assert out["images"] == 400 and out["rounds"] == 1
    seconds = out["median_seconds"]
    assert set(seconds) == {"first_load", "second_load", "idx_load"}
    runs = out["all_runs"]  # unrounded: 400 images read from the cache in milliseconds
    assert 0 < runs["second_load"][0] < runs["first_load"][0]
    # Each timed load returned every image written, the cached one included.
    assert out["images_loaded"] == {"first_load": [400], "second_load": [400]}


@pytest.mark.slow
def test_auth_requests_times_the_cached_and_the_uncached_server():
    out = bench("auth_requests.py", "--requests", "5", "--rounds", "1")
    assert out["requests"] == 5 and out["cache_seconds"] > 0
    runs = out["all_runs"]
    assert len(runs["cached"]) == len(runs["uncached"]) == 1
    # Without the cache every request pays a scrypt hash (tens of ms); with it, one did.
    assert out["uncached_over_cached"] > 1
    assert out["median_ms_per_request"]["uncached"] > out["median_ms_per_request"]["cached"]
