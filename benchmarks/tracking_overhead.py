"""What MLflow tracking costs: the same short run with and without it, alternating.

    python benchmarks/tracking_overhead.py --config configs/fast.toml --rounds 3

Each tracked run logs what `cnnlab train` logs (params, per-epoch metrics, config and
architecture artifacts, the weights) as a new run in one SQLite store, as a user's runs go into
cnnlab-runs/mlflow.db. The first tracked run creates that store (MLflow builds its tables) and
warms the imports: it is reported as first_tracked_s and not counted. Prints one JSON line:
median wall seconds of each, the overhead of those medians in percent, the median of the
overheads within each round's pair, which drifts of the machine's speed between rounds (a few
percent here, as large as the cost measured) do not move, and the finished runs the store holds
at the end (the tracked runs, first one included: the untracked ones write none).

With `--jobs N`, each timing is N such runs at once in worker processes (cnnlab's WorkerPool,
as `cnnlab study --jobs N` runs them), all tracked into the one SQLite store or none: the cost
of tracking where several processes write one store.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import tempfile
import time
from pathlib import Path

from _common import emit, median, note

from cnnlab._pool import WorkerPool
from cnnlab.config import load_config
from cnnlab.data import load_splits
from cnnlab.runs import train_run
from cnnlab.tracking import NoTracking, Store


def timed(cfg, splits, store: Path | None) -> float:
    started = time.perf_counter()
    if store is None:
        train_run(cfg, splits=splits, tracking=NoTracking())
    else:
        train_run(cfg, splits=splits, tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    return time.perf_counter() - started


_SPLITS = {}  # per worker process: the data, loaded once


def timed_in_worker(cfg, store: Path | None) -> float:
    if "splits" not in _SPLITS:
        _SPLITS["splits"] = load_splits(cfg)
    return timed(cfg, _SPLITS["splits"], store)


def timed_jobs(pool, cfg, store: Path | None) -> float:
    """Wall seconds of `pool.jobs` runs at once, all tracked into one store or none."""
    started = time.perf_counter()
    list(pool.run(timed_in_worker, [(cfg, store)] * pool.jobs))
    return time.perf_counter() - started


def finished_runs(store: Path) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    ids = [e.experiment_id for e in client.search_experiments()]
    return len(client.search_runs(ids, "attributes.status = 'FINISHED'", max_results=50_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/fast.toml")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, one store")
    args = parser.parse_args()
    cfg = load_config(args.config, args.set)
    plain, tracked = [], []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        if args.jobs > 1:
            # The store made here first: workers creating it at once would race its migrations.
            Store(f"sqlite:///{Path(tmp) / 'mlflow.db'}").ensure_experiment(cfg.tracking.experiment)
            pool = stack.enter_context(WorkerPool(args.jobs))
            run = functools.partial(timed_jobs, pool, cfg)
        else:
            run = functools.partial(timed, cfg, load_splits(cfg))
        warm = run(Path(tmp))
        for r in range(args.rounds):
            for kind in ["plain", "tracked"] if r % 2 == 0 else ["tracked", "plain"]:
                store = None if kind == "plain" else Path(tmp)
                seconds = run(store)
                (plain if kind == "plain" else tracked).append(seconds)
                note(f"round {r + 1} {kind}: {seconds:.2f} s")
        stored = finished_runs(Path(tmp))
    a, b = median(plain), median(tracked)
    pairs = [100 * (t - p) / p for p, t in zip(plain, tracked)]
    emit(
        {
            "benchmark": "tracking_overhead",
            "config": args.config,
            "overrides": args.set,
            "untracked_s": round(a, 2),
            "tracked_s": round(b, 2),
            "overhead_pct": round(100 * (b - a) / a, 1),
            "pair_overhead_pct": round(median(pairs), 1),
            "pairs_pct": [round(x, 1) for x in pairs],
            "first_tracked_s": round(warm, 2),
            "rounds": args.rounds,
            "jobs": args.jobs,
            "all_runs": {"untracked": plain, "tracked": tracked},
            "runs_in_store": stored,
        }
    )


if __name__ == "__main__":
    main()
