"""The wall time of a whole study: each step, then the total, in a fresh MLflow store.

    python benchmarks/study_time.py --seeds 1 --jobs 2     # the study, one seed per variant
    python benchmarks/study_time.py --quick               # the smoke-test version

Runs `cnnlab study`'s library call (cnnlab.study.run_study) on the folder one step at a time
(`only=step`, in order, in one store) so each step is timed on its own, then writes the report
as `cnnlab study` does and times that too. Prints one JSON line per step (its runs and seconds)
and a last line with the total: the wall time a user waits for `cnnlab study`, and the finished
runs the store holds at the end (what the time bought).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import emit, note

import cnnlab
from cnnlab.study import load_steps, run_study


def finished_runs(uri: str) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return len(client.search_runs(ids, "attributes.status = 'FINISHED'", max_results=50_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", default="experiments")
    parser.add_argument("--seeds", type=int, help="seeds per variant (default: each step's)")
    parser.add_argument("--jobs", type=int, default=1, help="train runs at once")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    folder = Path(args.folder)
    common = {"folder": str(folder), "seeds": args.seeds, "jobs": args.jobs, "quick": args.quick}
    steps = [s.name for s in load_steps(folder)]
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        total = time.perf_counter()
        experiments, runs = [], 0
        for name in steps:
            started = time.perf_counter()
            (result,), _ = run_study(
                folder,
                quick=args.quick,
                only=name,
                seeds=args.seeds,
                tracking_uri=uri,
                jobs=args.jobs,
                echo=note,
            )
            seconds = time.perf_counter() - started
            experiments.append(result.experiment)
            runs += result.runs
            emit(
                {
                    "benchmark": "study_time",
                    "step": name,
                    "runs": result.runs,
                    "seconds": round(seconds, 1),
                    **common,
                }
            )
        started = time.perf_counter()
        cnnlab.report(experiments, out=Path(tmp) / "report", tracking_uri=uri)
        report_s = time.perf_counter() - started
        emit(
            {
                "benchmark": "study_time",
                "step": "total",
                "runs": runs,
                "report_seconds": round(report_s, 1),
                "seconds": round(time.perf_counter() - total, 1),
                "finished_runs_in_store": finished_runs(uri),
                **common,
            }
        )


if __name__ == "__main__":
    main()
