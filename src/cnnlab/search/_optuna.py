"""The Optuna engine: seeded TPE (or random) by ask and tell, pruners on the per-epoch metric,
the study in SQLite (one process at a time).

    engine = OptunaEngine(space, cfg.search, Path("searches/1a2b.optuna.db"), epochs=3)
    engine.records()                   # trials earlier processes finished
    record = engine.run_one(objective)

A trial counts once it has a cnnlab record (user attribute). Trials a killed process left
RUNNING are told FAIL when the study is opened again, and do not count. The sampler is seeded
by (seed, n) for trial n, so resuming proposes what an uninterrupted search would have.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.config import SearchConfig
from cnnlab.search._records import TrialRecord
from cnnlab.search._space import Dimension, Space
from cnnlab.training import Callback, EpochMetrics, TrainState

RECORD_ATTR = "cnnlab.record"


def optuna_distributions(space: Space) -> dict[str, Any]:
    """Dimensions -> Optuna distributions; quantizing and casting happen in Dimension.finish,
    as in Hyperopt, so both engines draw the same values."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    def one(d: Dimension):
        if d.dist == "choice":
            return CategoricalDistribution(list(range(len(d.options))))  # options may be lists
        if d.dist == "intrange":
            return IntDistribution(int(d.low), int(d.high))
        return FloatDistribution(d.low, d.high, log=d.log)

    return {d.key: one(d) for d in space}


class PruningCallback(Callback):
    """Reports the epoch's validation metric to the trial; asks the pruner whether to stop.

    Stopping goes through state.stop_reason rather than an exception, so the child run ends
    FINISHED with its curves; the engine then tells the trial PRUNED and tags the run.
    """

    def __init__(self, trial, objective: str, pruner: str):
        self.trial = trial
        self.objective = objective
        self.pruner = pruner
        self.pruned = ""

    def on_epoch_end(self, state: TrainState, metrics: EpochMetrics) -> None:
        value = metrics.val_loss if self.objective == "val_loss" else metrics.val_accuracy
        if not math.isfinite(value):
            return
        self.trial.report(value, metrics.epoch)
        if state.epoch < state.epochs and self.trial.should_prune():
            self.pruned = f"pruned by the {self.pruner} pruner after epoch {metrics.epoch}"
            state.stop_reason = self.pruned
            state.skip_test = True  # an abandoned trial has no use for test figures


class OptunaEngine:
    def __init__(self, space: Space, cfg: SearchConfig, state_path: Path, epochs: int):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # cnnlab prints its own table
        self.space = space
        self.cfg = cfg
        self.epochs = epochs
        self.distributions = optuna_distributions(space)
        state_path.parent.mkdir(parents=True, exist_ok=True)
        self.storage = optuna.storages.RDBStorage(f"sqlite:///{state_path}")
        self.direction = "maximize" if cfg.objective == "val_accuracy" else "minimize"
        study = self._study(0)
        self._fail_stale(study)

    def records(self) -> list[TrialRecord]:
        trials = self._study(0).get_trials(deepcopy=False)
        found = [t.user_attrs[RECORD_ATTR] for t in trials if RECORD_ATTR in t.user_attrs]
        return sorted((TrialRecord.from_dict(r) for r in found), key=lambda r: r.number)

    def run_one(self, objective) -> TrialRecord:
        number = len(self.records())
        study = self._study(number)
        trial = study.ask(self.distributions)
        return run_trial(
            study, trial, number, sampled_params(self.space, trial), objective, self.cfg
        )

    # ------------------------------------------------------------ helpers

    def _study(self, number: int):
        import optuna

        return optuna.create_study(
            storage=self.storage,
            study_name="cnnlab",
            sampler=self._sampler(number),
            pruner=self._pruner(),
            direction=self.direction,
            load_if_exists=True,
        )

    def _sampler(self, number: int):
        from optuna.samplers import RandomSampler, TPESampler

        seed = int(np.random.SeedSequence([self.cfg.seed, number]).generate_state(1)[0])
        if self.cfg.algo == "random":
            return RandomSampler(seed=seed)
        return TPESampler(seed=seed, n_startup_trials=self.cfg.startup_trials)

    def _pruner(self):
        return make_pruner(self.cfg, self.epochs)

    def _fail_stale(self, study) -> None:
        from optuna.trial import TrialState

        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(trial.number, state=TrialState.FAIL)


def sampled_params(space: Space, trial) -> dict[str, Any]:
    """The trial's sample as config values: choices decoded, integers cast, rounded to q."""

    def decode(d: Dimension, value: Any) -> Any:
        return d.options[value] if d.dist == "choice" else value

    return {d.key: d.finish(decode(d, trial.params[d.key])) for d in space}


def run_trial(study, trial, number: int, params: dict[str, Any], objective, cfg: SearchConfig):
    """Trains an asked trial, stores its record as a user attribute and tells the outcome."""
    from optuna.trial import TrialState

    pruning = None
    if cfg.pruner != "none":
        pruning = PruningCallback(trial, cfg.objective, cfg.pruner)
    try:
        record = objective(number, params, [pruning] if pruning else [])
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)  # cut short: it will be proposed again
        raise
    record.extra["optuna_trial"] = trial.number
    if pruning and pruning.pruned and record.status == "ok":
        record.status, record.reason = "pruned", pruning.pruned
        objective.layout.mark_pruned(record.run_id, pruning.pruned)
    trial.set_user_attr(RECORD_ATTR, record.to_dict())
    if record.status == "ok":
        study.tell(trial, record.value)
    else:
        study.tell(trial, state=TrialState.PRUNED if record.status == "pruned" else TrialState.FAIL)
    return record


def make_pruner(cfg: SearchConfig, epochs: int):
    from optuna.pruners import HyperbandPruner, MedianPruner, NopPruner

    if cfg.pruner == "median":
        return MedianPruner(cfg.pruner_startup, cfg.pruner_warmup)
    if cfg.pruner == "hyperband":
        return HyperbandPruner(min_resource=1, max_resource=epochs)
    return NopPruner()
