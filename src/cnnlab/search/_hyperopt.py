"""The Hyperopt engine: TPE or random, one fmin step per trial, Trials saved after each.

    engine = HyperoptEngine(space, cfg.search, Path("searches/1a2b.hyperopt.pkl"))
    engine.records()                   # what earlier processes finished, from the pickle
    record = engine.run_one(objective) # propose, train, record, save atomically

Trial n is proposed from a generator seeded by (seed, n), so a resumed search proposes exactly
what an uninterrupted one would have; a trial cut short by an interrupt is never saved, so it
is proposed and run again.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.config import SearchConfig
from cnnlab.search._records import TrialRecord
from cnnlab.search._space import Dimension, Space


def hyperopt_space(space: Space) -> dict[str, Any]:
    """Dimensions -> hp expressions; log bounds are taken here, so the TOML holds values."""
    from hyperopt import hp

    def one(d: Dimension):
        if d.dist == "choice":
            return hp.choice(d.key, list(d.options))
        if d.dist == "intrange":
            return hp.randint(d.key, int(d.low), int(d.high) + 1)  # hp.randint excludes high
        if d.dist == "uniform":
            return hp.uniform(d.key, d.low, d.high)
        if d.dist == "quniform":
            return hp.quniform(d.key, d.low, d.high, d.q)
        log_low, log_high = math.log(d.low), math.log(d.high)
        if d.dist == "loguniform":
            return hp.loguniform(d.key, log_low, log_high)
        return hp.qloguniform(d.key, log_low, log_high, d.q)

    return {d.key: one(d) for d in space}


class HyperoptEngine:
    def __init__(self, space: Space, cfg: SearchConfig, state_path: Path, epochs: int = 0):
        del epochs  # the Engine signature: a pruner's budget, and Hyperopt cannot prune
        from hyperopt import Trials, rand, tpe

        self.space = space
        self.hp_space = hyperopt_space(space)
        self.cfg = cfg
        self.path = state_path
        self.maximize = cfg.objective == "val_accuracy"
        if cfg.algo == "tpe":
            self.algo = partial(tpe.suggest, n_startup_jobs=cfg.startup_trials)
        else:
            self.algo = rand.suggest
        self.trials = self._load() if state_path.exists() else Trials()

    def records(self) -> list[TrialRecord]:
        return [self._record(doc) for doc in self.trials.trials]

    def run_one(self, objective) -> TrialRecord:
        from hyperopt import STATUS_FAIL, STATUS_OK, fmin
        from hyperopt.exceptions import AllTrialsFailed

        number = len(self.trials.trials)
        box: dict[str, TrialRecord] = {}

        def fn(params: dict[str, Any]) -> dict[str, Any]:
            record = objective(number, self._finish(params), [])
            box["record"] = record
            if record.status != "ok":
                return {"status": STATUS_FAIL, "record": record.to_dict()}
            loss = -record.value if self.maximize else record.value
            return {"status": STATUS_OK, "loss": loss, "record": record.to_dict()}

        # fmin looks the best point up even with return_argmin=False; none yet is fine here.
        with contextlib.suppress(AllTrialsFailed):
            fmin(
                fn,
                self.hp_space,
                algo=self.algo,
                max_evals=number + 1,
                trials=self.trials,
                rstate=np.random.default_rng([self.cfg.seed, number]),
                show_progressbar=False,
                return_argmin=False,
                allow_trials_fmin=False,
            )
        self._save()
        return box["record"]

    # ------------------------------------------------------------ state

    def _record(self, doc: dict[str, Any]) -> TrialRecord:
        """The record stored with the trial; its params re-derived by space_eval from the vals."""
        from hyperopt import space_eval

        record = TrialRecord.from_dict(doc["result"]["record"])
        vals = {k: v[0] for k, v in doc["misc"]["vals"].items() if v}
        record.params = self._finish(space_eval(self.hp_space, vals))
        return record

    def _finish(self, params: dict[str, Any]) -> dict[str, Any]:
        """Integer casting and rounding to q; choices arrive as values (space_eval's work)."""
        return {d.key: d.finish(params[d.key]) for d in self.space}

    def _load(self):
        try:
            with self.path.open("rb") as f:
                return pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            from cnnlab.config import ConfigError

            raise ConfigError(f"{self.path}: cannot read the search state ({exc})") from None

    def _save(self) -> None:
        """Temp file then rename: a crash leaves the old state or the new one, never half."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            pickle.dump(self.trials, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
