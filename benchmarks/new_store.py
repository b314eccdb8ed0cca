"""What a new runs folder costs before its first run: MLflow's migrations against a copy.

    python benchmarks/new_store.py --rounds 5

Every new embedded store (a new `--runs-dir`, each test's runs folder) is opened once before
anything is logged. Times, in alternating rounds, the first open of a new store plus one
experiment created in it, two ways: seeded from cnnlab's template (an empty store migrated
once per MLflow version, copied into place), and created by MLflow's migrations as without
it. The template is made first in a temporary cache, and that one-off time is reported too.
Prints one JSON line: the medians and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

from _common import emit, median, note, swapped

import cnnlab.tracking._store as store_module  # where a new store is seeded: swapped to compare
from cnnlab.tracking import Store, default_uri, seed_store, template_path


def seeding(on: bool):
    """Off: a new store is left for MLflow to create, as without the template."""
    return contextlib.nullcontext() if on else swapped(store_module, "seed_store", lambda p: False)


def first_open(folder: Path) -> float:
    """Seconds from nothing to a store with one experiment in it."""
    started = time.perf_counter()
    Store(default_uri(folder)).ensure_experiment("e")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CNNLAB_CACHE_DIR"] = str(Path(tmp) / "cache")
        started = time.perf_counter()
        seed_store(Path(tmp) / "warm.db")  # makes the template
        template_s = time.perf_counter() - started
        assert template_path().is_file(), "no template was made"
        ways = {"migrated": False, "seeded": True}
        times: dict[str, list[float]] = {way: [] for way in ways}
        for r in range(args.rounds):
            for way, on in ways.items():
                with seeding(on):
                    times[way].append(first_open(Path(tmp) / f"{way}-{r}"))
                note(f"round {r + 1}: {way}: {times[way][-1]:.3f} s")
    med = {way: round(median(v), 4) for way, v in times.items()}
    emit(
        {
            "benchmark": "new_store",
            "template_s": round(template_s, 3),
            "first_open_s": med,
            "ratio": round(med["migrated"] / med["seeded"], 2),
            "saved_s": round(med["migrated"] - med["seeded"], 3),
            "all_runs": times,
        }
    )


if __name__ == "__main__":
    main()
