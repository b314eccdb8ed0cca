"""Read runs back from MLflow: everything a report shows comes from here.

records = collect(uri, ["baseline", "architecture"])
records["baseline"][0].history["val_loss"]   # [(epoch, value), ...]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

from cnnlab.tracking import Store, open_store, shown
from cnnlab.tracking.tags import SEED_TAG, SEEDS_TAG, SELECT_TAG, STEP_HASH_TAG, VARIANT_TAG

CURVES = ("train_loss", "val_loss", "val_accuracy")  # per-epoch metrics plotted per run
# Params that describe where or how a run was stored, not what was trained.
_NOT_COMPARED = ("tracking.", "search.")


@dataclass
class RunRecord:
    run_id: str
    name: str
    experiment: str
    status: str
    start_time: int  # ms since the epoch
    params: dict[str, str]
    metrics: dict[str, float]  # the last value of every metric
    tags: dict[str, str]
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    @property
    def parent_id(self) -> str | None:
        return self.tags.get("mlflow.parentRunId")


@dataclass
class ExperimentRecord:
    name: str
    experiment_id: str
    tags: dict[str, str]
    runs: list[RunRecord]  # oldest first

    @cached_property
    def trained(self) -> list[RunRecord]:
        """Runs that trained a model and finished: what curves and tables compare. In a study
        step, runs left from an earlier version of the step (another step hash, a seed it no
        longer runs) are left out."""
        step = self.tags.get(STEP_HASH_TAG)
        seeds = {
            v: {str(s) for s in ss} for v, ss in json.loads(self.tags.get(SEEDS_TAG, "{}")).items()
        }

        def current(run: RunRecord) -> bool:
            if step is not None and run.tags.get(STEP_HASH_TAG, step) != step:
                return False
            variant = run.tags.get(VARIANT_TAG)
            return variant not in seeds or run.tags.get(SEED_TAG) in seeds[variant]

        return [
            r
            for r in self.runs
            if r.status == "FINISHED" and "test_accuracy" in r.metrics and current(r)
        ]


def collect(uri: str, experiments: list[str] | None = None) -> list[ExperimentRecord]:
    """The named experiments (all but Default when None), with runs and per-epoch histories."""
    store = open_store(uri)  # a mistyped store is one line, and is not created by reading it
    if experiments is None:  # a server lists only what this user may read
        found = sorted(store.experiments(), key=lambda e: e.creation_time or 0)
        return [_experiment(store, e) for e in found if e.name != "Default"]
    named = []
    for name in experiments:
        # Asked by name, a server refuses a user without READ (TrackingDenied, exit 7) rather
        # than leaving the experiment out of a listing.
        found = store.find_experiment(name)
        if found is None or found.lifecycle_stage == "deleted":
            from cnnlab.config import ConfigError

            raise ConfigError(f"--experiment: no experiment named {name!r} in {shown(uri)}")
        named.append(found)
    return [_experiment(store, e) for e in named]


def _experiment(store: Store, exp) -> ExperimentRecord:
    runs = store.search_runs([exp.experiment_id], max_results=5000)
    records = [_run(store, exp.name, r) for r in runs]
    records.sort(key=lambda r: r.start_time)
    return ExperimentRecord(exp.name, exp.experiment_id, dict(exp.tags), records)


def _run(store: Store, experiment: str, run) -> RunRecord:
    record = RunRecord(
        run_id=run.info.run_id,
        name=run.info.run_name or run.info.run_id[:8],
        experiment=experiment,
        status=run.info.status,
        start_time=run.info.start_time or 0,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        tags=dict(run.data.tags),
    )
    for key in CURVES:
        if key in record.metrics:
            record.history[key] = store.metric_history(record.run_id, key)
    return record


def differing_params(runs: list[RunRecord]) -> list[str]:
    """Config keys whose values are not the same in every run, in a stable order."""
    keys = sorted({k for r in runs for k in r.params if not k.startswith(_NOT_COMPARED)})
    return [k for k in keys if len({r.params.get(k) for r in runs}) > 1]


# What a run's best is chosen on: the logged metric, and +1 where higher is better.
SELECTIONS = {"val_loss": ("best_val_loss", -1), "val_accuracy": ("best_val_accuracy", +1)}


def best_run(runs: list[RunRecord], select: str = "val_loss") -> RunRecord | None:
    """Selected on a validation measure (SELECTIONS); never on the test set."""
    key, sense = SELECTIONS[select]
    scored = [r for r in runs if key in r.metrics]
    return max(scored, key=lambda r: sense * r.metrics[key], default=None)


def selection(record: ExperimentRecord) -> str:
    """What picks a step's variant and best run: its `select`, else validation loss."""
    return record.tags.get(SELECT_TAG, "val_loss")


def tested_epoch(run: RunRecord) -> str:
    """Which weights the run tested: its best epoch on validation loss, or its last."""
    last = run.metrics.get("epochs_run")
    best = run.params.get("train.restore_best", "true") == "true"
    epoch = run.metrics.get("best_epoch") if best else last
    return f"{'best' if best else 'last'} ({int(epoch)})" if epoch is not None else "-"
