"""A study's train runs, one after another or in worker processes: the same function either way.

for index, done in run_jobs(pool, [(cfg, uri, data_dir, tags, cut), ...]):   # pool None: here
    ...
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cnnlab.config import Config
from cnnlab.tracking.tags import SEED_TAG, STEP_HASH_TAG, VARIANT_TAG

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


def train_on_node(
    cfg: Config, uri: str, data_dir: str | None, tags: dict[str, str], cut: str | None = None
) -> Done:
    """train_one as a cluster's task: a second attempt (the first one's node was lost) finds
    the first's run, cut short, and goes on from its checkpoint where that can be read here or
    was logged (tracking.upload_checkpoint); where not, the cut run is closed KILLED and the run
    starts again. Either way one (variant, seed) ends FINISHED once."""
    from cnnlab.runs import fetch_checkpoint
    from cnnlab.study._plan import cut_runs
    from cnnlab.tracking import Store

    if cut is None:
        store = Store(uri)
        found = cut_runs(store, cfg.tracking.experiment, tags[STEP_HASH_TAG])
        cut = found.get((tags[VARIANT_TAG], int(tags[SEED_TAG])))
        if cut is not None and not fetch_checkpoint(uri, cut):
            store.terminate(cut, "KILLED")
            cut = None
    return train_one(cfg, uri, data_dir, tags, cut)


def run_resources(cluster) -> Callable[[tuple], dict[str, float]]:
    """What each study run asks of a cluster: `train.threads` CPUs (one when 0), and one GPU
    for a cuda run, or for an `auto` one where the cluster has GPUs."""

    def resources(item: tuple) -> dict[str, float]:
        train = item[0].train
        gpu = train.device == "cuda" or (train.device == "auto" and cluster.gpus > 0)
        return {"num_cpus": max(1, train.threads), "num_gpus": 1 if gpu else 0}

    return resources


def run_jobs(pool, items: Sequence[tuple]) -> Iterator[tuple[int, Done]]:
    """(index, Done) per item as each finishes: in the pool's workers, or in order here."""
    if pool is not None:
        yield from pool.run(train_on_node if getattr(pool, "remote", False) else train_one, items)
        return
    try:
        for index, item in enumerate(items):
            yield index, train_one(*item)
    finally:
        _SPLITS.clear()  # the parent keeps no dataset between steps or calls
