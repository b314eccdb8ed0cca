"""What a local search asks of its engine, and the engines by `search.engine`: each proposes
trials, runs them through the objective and keeps its own state file, so a search resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from cnnlab.config import SearchConfig
from cnnlab.search._hyperopt import HyperoptEngine
from cnnlab.search._optuna import OptunaEngine
from cnnlab.search._records import TrialRecord
from cnnlab.search._space import Space


class Engine(Protocol):
    def __init__(self, space: Space, cfg: SearchConfig, state_path: Path, epochs: int): ...

    def records(self) -> list[TrialRecord]:
        """Every trial with an outcome, read back from the state file (earlier runs' too)."""
        ...

    def run_one(self, objective) -> TrialRecord:
        """Proposes one trial, runs it through `objective`, records its outcome."""
        ...


# search.engine -> its class; a shared study (search.storage) is Optuna's alone (search._shared).
ENGINES: dict[str, type[Engine]] = {"optuna": OptunaEngine, "hyperopt": HyperoptEngine}


def make_engine(space: Space, cfg: SearchConfig, state_path: Path, epochs: int) -> Engine:
    return ENGINES[cfg.engine](space, cfg, state_path, epochs)
