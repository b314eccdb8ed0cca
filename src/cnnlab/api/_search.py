"""Searches: a config's [search.space] tried trial by trial, as `cnnlab tune` does."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from cnnlab.api._common import ConfigSource, Overrides, _bar, _isolated, _override_items
from cnnlab.api._results import TuneResult
from cnnlab.api._runs import load_config
from cnnlab.config import override_text


@_isolated
def tune(
    config: ConfigSource = None,
    overrides: Overrides = (),
    *,
    engine: str | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    data_dir: str | None = None,
    tracking_uri: str | None = None,
    progress: bool = True,
    on_trial: Callable[[Any], None] | None = None,
    jobs: int = 1,
    ray: str | None = None,
) -> TuneResult:
    """Searches the config's [search.space], as `cnnlab tune` does; rerun to resume.

    Args:
        config, overrides: as for load_config; the config needs a [search.space].
        engine: "hyperopt" or "optuna" (default: search.engine).
        trials: trials in total, across resumes (default: search.trials).
        timeout: seconds after which no new trial starts (default: search.timeout).
        data_dir, tracking_uri: as for train.
        progress: one progress bar over the trials.
        on_trial: called with each trial's TrialRecord as it ends.
        jobs: trials at once, each in a worker process pinned to its share of the cores, on
            one Optuna study (search.storage, or a journal file beside the store); Optuna only.
            TPE's proposals after its random start then differ from one job's.
        ray: a Ray cluster's address (HOST:PORT of its head) or "local": the trials run as
            Ray tasks on its nodes, on the shared study (see cnnlab.cluster); Optuna only.

    Returns: a TuneResult: the trials as a DataFrame (number, state, value, epochs, seconds,
    run_id, reason and one column per searched key), the best trial's params, value, run id
    and whole config, and the parent run id.
    """
    from cnnlab.config import SearchConfig
    from cnnlab.search import counts_as_trial, run_search, trial_config

    items = _override_items(overrides)
    for key, value in (("engine", engine), ("trials", trials), ("timeout", timeout)):
        if value is not None:
            items.append(override_text(f"search.{key}", value))
    cfg = load_config(config, items)
    bar = _bar(cfg.search.trials, "trials") if progress else None

    def observe(record) -> None:
        # Samples drawn again do not count as trials.
        if bar is not None and counts_as_trial(record, cfg.search.count_invalid):
            bar.update(1)
        if on_trial is not None:
            on_trial(record)

    try:
        result = run_search(
            cfg,
            tracking_uri=tracking_uri,
            data_dir=data_dir,
            on_trial=observe,
            jobs=jobs,
            ray=ray,
        )
    finally:
        if bar is not None:
            bar.close()
    from cnnlab.export import register_best

    registered = register_best(result, cfg.search.register)
    best = result.best
    best_config = None
    if best is not None:
        best_config = dataclasses.replace(trial_config(cfg, best.params), search=SearchConfig())
    return TuneResult(
        result.parent_run_id,
        result.search_id,
        result.engine,
        result.objective,
        _trials_frame(result.records),
        best.value if best else None,
        dict(best.params) if best else None,
        best.run_id if best else None,
        best_config,
        result.tracking_uri,
        result,
        registered,
    )


# ---------------------------------------------------------------- helpers


def _trials_frame(records):
    keys = sorted({k for r in records for k in r.params})
    rows = [
        {
            "number": r.number,
            "state": r.status,
            "value": r.value,
            "epochs": r.epochs,
            "seconds": r.seconds,
            "run_id": r.run_id,
            "reason": r.reason,
            **{k: r.params.get(k) for k in keys},
        }
        for r in sorted(records, key=lambda r: r.number)
    ]
    columns = ["number", "state", "value", "epochs", "seconds", "run_id", "reason", *keys]
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)
