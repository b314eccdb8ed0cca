"""A study's train runs, one after another or in worker processes: the same function either way.

for index, done in run_jobs(pool, [(cfg, uri, data_dir, tags, cut), ...]):   # pool None: here
    ...
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cnnlab.config import Config

# Splits by data config, per process: a worker loads each dataset once, not once per run.
_SPLITS: dict[str, Any] = {}


@dataclass(frozen=True)
class Done:
    """What the parent needs of a finished run (picklable, small)."""

    run_id: str | None
    best_val_loss: float
    test_loss: float
    test_accuracy: float
    images_seen: int
    seconds: float
    failure: str | None = None  # why the run stopped short of a result: "diverged: ..."


def train_one(
    cfg: Config, uri: str, data_dir: str | None, tags: dict[str, str], cut: str | None = None
) -> Done:
    """One study run as `cnnlab train` makes it, with the step's tags; `cut`, a run of it cut
    short, goes on from its checkpoint when it has one."""
    from cnnlab.data import load_splits
    from cnnlab.runs import resume_or_train
    from cnnlab.training import TrainingDiverged

    key = json.dumps(vars(cfg.data), sort_keys=True)  # the split ignores train.seed
    if key not in _SPLITS:
        _SPLITS[key] = load_splits(cfg, data_dir)
    try:
        outcome = resume_or_train(cfg, cut, tracking_uri=uri, splits=_SPLITS[key], extra_tags=tags)
    except TrainingDiverged as exc:
        # A result of the step, not the end of the study: the run stays FAILED in MLflow with
        # its curve up to the divergence and the reason (cnnlab.error), for the advisor.
        nan = float("nan")
        return Done(None, nan, nan, nan, 0, 0.0, f"diverged: {exc}")
    r = outcome.result
    return Done(
        outcome.run_id, r.best_val_loss, r.test_loss, r.test_accuracy, r.images_seen, r.seconds
    )


def run_jobs(pool, items: Sequence[tuple]) -> Iterator[tuple[int, Done]]:
    """(index, Done) per item as each finishes: in the pool's workers, or in order here."""
    if pool is not None:
        yield from pool.run(train_one, items)
        return
    try:
        for index, item in enumerate(items):
            yield index, train_one(*item)
    finally:
        _SPLITS.clear()  # the parent keeps no dataset between steps or calls
