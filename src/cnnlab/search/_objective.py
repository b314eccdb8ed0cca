"""One trial: a sample -> a config through --set's path -> architecture check -> training.

    objective = Objective(cfg, layout, splits, uri, data_dir=None)
    record = objective(number=3, params={"model.filters": 88}, callbacks=[])

An impossible sample is recorded as a failed child run in milliseconds and never trained. A trial
that raises or diverges is recorded as failed and the search goes on; only an interrupt
(KeyboardInterrupt, SIGTERM) escapes, after the runner has ended its child run KILLED. Run again,
that trial goes on in its child run from the checkpoint of its last complete epoch, if any.
"""

from __future__ import annotations

import math
import time
from typing import Any

from cnnlab.config import Config, ConfigError, from_dict, to_dict
from cnnlab.data import InfoCache, Splits, load_splits
from cnnlab.models import ArchitectureError, check_architecture
from cnnlab.runs import resume_or_train, train_run
from cnnlab.search._layout import SearchLayout
from cnnlab.search._records import INVALID_ARCHITECTURE, TrialRecord
from cnnlab.search._space import apply_to_resolved, overrides
from cnnlab.training import Callback, TrainingDiverged, TrainState

# Keys whose value changes the splits themselves; sampling one reloads them for every trial.
_SPLIT_KEYS = ("data.",)


def trial_config(base: Config, params: dict[str, Any], run_name: str = "") -> Config:
    """base + the sample, applied as `cnnlab train --set key=value` items would be.

    One difference: a sample that switches model.name drops the base's model settings that the
    new family lacks (_space.apply_to_resolved), where --set on a file naming them would refuse.
    """
    raw = to_dict(base)  # new dicts and lists all the way down (dataclasses.asdict): ours to edit
    apply_to_resolved(raw, overrides(params))
    if run_name:
        raw["tracking"]["run_name"] = run_name
    return from_dict(raw)


def objective_value(result: Any, objective: str) -> float:
    """The best epoch's validation loss or accuracy; the test set never enters a search."""
    return result.best_val_loss if objective == "val_loss" else result.best_val_accuracy


class Objective:
    def __init__(
        self,
        base: Config,
        layout: SearchLayout,
        splits: Splits,
        uri: str,
        data_dir: str | None = None,
    ):
        self.base = base
        self.layout = layout
        self.splits = splits
        self.uri = uri
        self.data_dir = data_dir
        self.objective = base.search.objective
        self.infos = InfoCache(data_dir)

    def __call__(
        self, number: int, params: dict[str, Any], callbacks: list[Callback] = ()
    ) -> TrialRecord:
        started = time.perf_counter()
        items = overrides(params)
        try:
            cfg = trial_config(self.base, params, run_name=f"trial-{number:03d}")
            info = self.infos(cfg.data)
            check_architecture(cfg.model, info.input_shape, info.num_classes)
        except ConfigError as exc:
            reason = (
                INVALID_ARCHITECTURE if isinstance(exc, ArchitectureError) else "invalid_config"
            )
            run_id = self.layout.failed_child(number, params, items, reason, str(exc))
            return self._failed(number, params, started, run_id, reason, str(exc))
        return self._train(number, params, items, cfg, list(callbacks), started)

    def _train(self, number, params, items, cfg: Config, callbacks, started) -> TrialRecord:
        try:
            outcome = resume_or_train(
                cfg,
                self.layout.cut_child(number),
                train_run,
                splits=self._splits(cfg, params),
                tracking_uri=self.uri,
                data_dir=self.data_dir,
                parent_run_id=self.layout.parent_id,
                callbacks=[_CatchUp(callbacks), *callbacks],
                extra_tags=self.layout.child_tags(number, items),
            )
        except Exception as exc:  # a failed trial is data for the search, not its end
            reason = "diverged" if isinstance(exc, TrainingDiverged) else "error"
            error = f"{type(exc).__name__}: {exc}".replace("\n", " ")
            run_id = self.layout.find_child(number)
            if run_id:
                self.layout.mark_failed(run_id, reason, error)
            return self._failed(number, params, started, run_id, reason, error)
        result = outcome.result
        value = objective_value(result, self.objective)
        if not math.isfinite(value):
            error = f"{self.objective} is {value} (is data.val_fraction 0?)"
            self.layout.mark_failed(outcome.run_id, "non_finite", error)
            return self._failed(number, params, started, outcome.run_id, "non_finite", error)
        return TrialRecord(
            number,
            params,
            "ok",
            value=value,
            epochs=result.epochs_run,
            seconds=time.perf_counter() - started,
            run_id=outcome.run_id,
            reason=result.stop_reason or "",
        )

    def _splits(self, cfg: Config, params: dict[str, Any]) -> Splits:
        if any(key.startswith(_SPLIT_KEYS) for key in params):
            return load_splits(cfg, self.data_dir)
        return self.splits  # loaded once per search

    @staticmethod
    def _failed(number, params, started, run_id, reason, error) -> TrialRecord:
        seconds = time.perf_counter() - started
        return TrialRecord(
            number, params, "failed", seconds=seconds, run_id=run_id, reason=reason, error=error
        )


class _CatchUp(Callback):
    """Shows the engine's callbacks the epochs a resumed trial ran before it was cut, in order:
    the engine's trial is a new one (a pruner has seen none of its reports), while the child
    run logged them the first time."""

    def __init__(self, callbacks: list[Callback]):
        self.callbacks = list(callbacks)

    def on_resume(self, state: TrainState) -> None:
        epoch = state.epoch
        for metrics in list(state.history):
            state.epoch = metrics.epoch
            for callback in self.callbacks:
                callback.on_epoch_end(state, metrics)
        state.epoch = epoch
