"""`tune --jobs N`: N worker processes on one Optuna study in a journal file beside the store.

    result = run_parallel(cfg, jobs=4)   # the same SearchResult as run_one's

A search given `search.storage` is shared already; one without gets a journal file in its state
folder (`<id>.jobs.journal`), so rerunning with --jobs resumes it. The workers are the shared
study's (search._shared): exactly `search.trials` trials, no sample twice, dead workers' trials
closed. TPE proposes each trial from the trials finished when it is asked, so with several
jobs its proposals after the first `n_startup` (random) trials differ from one job's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from cnnlab._pool import WorkerPool, emit
from cnnlab.config import Config, ConfigError
from cnnlab.search._search import prepare, run_one, search_id, state_path
from cnnlab.tracking import Store, resolve_uri


def run_parallel(
    cfg: Config,
    jobs: int,
    *,
    tracking_uri: str | None = None,
    data_dir: str | None = None,
    on_trial: Callable | None = None,
):
    """Runs cfg's search with `jobs` trials at once; returns the SearchResult with every trial.
    `on_trial` is called here, in this process, with each trial's record as a worker ends it."""
    if cfg.search.engine != "optuna":
        raise ConfigError(
            f'tune --jobs {jobs}: trials at once need search.engine = "optuna", '
            f"got {cfg.search.engine!r} (Hyperopt proposes one trial at a time)"
        )
    cfg = _with_storage(cfg, tracking_uri)
    prepare(cfg)  # bad input stops here, before any process or run exists
    # The store and experiment made here, once: workers creating a new SQLite store at the
    # same moment would race through its schema migrations.
    Store(resolve_uri(cfg.tracking, tracking_uri)).ensure_experiment(cfg.tracking.experiment)
    with WorkerPool(jobs) as pool:
        items = [(cfg, tracking_uri, data_dir)] * jobs
        results = [r for _, r in pool.run(_worker, items, on_event=on_trial)]
    return max(results, key=lambda r: len(r.records))  # the last to end saw every trial


def _with_storage(cfg: Config, tracking_uri: str | None) -> Config:
    if cfg.search.storage:
        return cfg
    uri = resolve_uri(cfg.tracking, tracking_uri)
    sid = search_id(cfg)  # the storage is no part of the id: the same search either way
    journal = state_path(cfg, uri, sid).with_name(f"{sid}.jobs.journal")
    journal.parent.mkdir(parents=True, exist_ok=True)
    storage = f"journal://{Path(journal).resolve()}"
    return dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, storage=storage))


def _worker(cfg: Config, tracking_uri: str | None, data_dir: str | None):
    return run_one(cfg, tracking_uri=tracking_uri, data_dir=data_dir, on_trial=emit)
