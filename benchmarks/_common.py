"""Helpers shared by the benchmark scripts: the machine's description and one-line JSON output."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import statistics
import sys

import torch

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def machine() -> dict[str, object]:
    """CPU model and cores as lscpu would name them, torch version, CUDA device if any."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    facts: dict[str, object] = {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch": torch.__version__,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if torch.cuda.is_available():
        facts["cuda_device"] = torch.cuda.get_device_name()
    return facts


def median(values: list[float]) -> float:
    return statistics.median(values)


def emit(record: dict[str, object]) -> None:
    """The benchmark's one JSON line on stdout; progress goes to stderr."""
    print(json.dumps({**record, "command": " ".join(sys.argv), "machine": machine()}))


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def swapped(owner: object, name: str, value: object):
    """`owner.name` is `value` inside the block: how a benchmark times the way cnnlab does not
    take (a cache left out, a step skipped) beside the way it does."""
    kept = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, kept)
