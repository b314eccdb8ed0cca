"""cnnlab's public functions: everything the command line does, as calls that return results.

    import cnnlab
    cfg = cnnlab.load_config({"model": {"filters": 32}, "train": {"epochs": 2}})
    cnnlab.summary(cfg)                          # the layer table, before any data is loaded
    run = cnnlab.train(cfg)                      # RunResult: run_id, metrics, history, model
    search = cnnlab.tune("configs/study-search.toml", engine="optuna", trials=8)
    search.trials                                # one DataFrame row per trial
    model = cnnlab.load_model(search.best_run_id)

Errors are exceptions with the one-line messages the CLI prints (ConfigError for bad input,
DataError for data, TrackingUnavailable for a server that is not there); exit codes belong to
the CLI alone.

This module holds what the API's modules share: the `_isolated` wrapper every call that
trains or builds goes through, the config argument types, and small helpers. The calls live in
`_runs` (one run), `_search` (tune) and `_study` (study, report, advise).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cnnlab.config import Config, ConfigError, override_text

ConfigSource = str | Path | Mapping[str, Any] | Config | None
Overrides = Sequence[str] | Mapping[str, Any]


def _isolated(function: Callable) -> Callable:
    """Leaves the process as the call found it: a notebook calls the API again and again, so
    the thread count training sets, the environment settings tracking sets (MLflow's
    telemetry switch, its HTTP timeouts) and the random generators that building a model seeds
    are put back when the call returns or raises: the next cell draws what it would have."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        import torch

        environ, threads = dict(os.environ), torch.get_num_threads()
        try:
            with _kept_generators():
                return function(*args, **kwargs)
        finally:
            for key in set(os.environ) - set(environ):
                del os.environ[key]
            os.environ.update(environ)
            torch.set_num_threads(threads)

    return call


@contextlib.contextmanager
def _kept_generators():
    """Python's, numpy's, torch's and (once started) CUDA's random generators, put back after."""
    import random

    import numpy as np
    import torch

    python, numpy = random.getstate(), np.random.get_state()
    # Only GPUs already started: isolating a call must not start CUDA.
    gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=gpus):
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


def _override_items(overrides: Overrides) -> list[str]:
    if isinstance(overrides, Mapping):
        return [override_text(k, v) for k, v in overrides.items()]
    if isinstance(overrides, str):
        raise ConfigError(f"overrides: expected a list of 'section.key=value', got {overrides!r}")
    return list(overrides)


def _frame(rows: list[dict[str, Any]]):
    import pandas as pd

    return pd.DataFrame(rows)


def _bar(total: int | None, unit: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit.rstrip("s"), desc=unit)
