"""One training run end to end, in the order that keeps bad input cheap:

check the architecture (no data, no run) -> load and verify data (no run) -> open the MLflow run
-> fit -> close the run with the right status.

    outcome = train_run(load_config("configs/default.toml"))
    outcome.run_id, outcome.result.test_accuracy
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cnnlab.config import Config, flatten, to_toml
from cnnlab.data import FOLDER, DatasetInfo, Splits, load_splits
from cnnlab.models import ModelSummary, format_summary
from cnnlab.runs._build import architecture_params, build
from cnnlab.runs._resume import checkpoint_to_resume, checkpointer, fetch_checkpoint
from cnnlab.tracking import MlflowTracking, RunSpec, Tracking, resolve_uri
from cnnlab.tracking.tags import DATA_NOTE_TAG, MODEL_TAG, RESUMED_TAG
from cnnlab.training import Callback, CheckpointError, FitResult, fit

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    run_id: str | None
    experiment: str
    tracking_uri: str | None
    result: FitResult
    summary: ModelSummary
    model: Any = None  # the trained network, holding the weights that were tested
    # per-channel (mean, std) of the training split: how the network's inputs were normalised
    pixel_stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None


def train_run(
    cfg: Config,
    *,
    data_dir: str | None = None,
    tracking_uri: str | None = None,
    tracking: Tracking | None = None,
    callbacks: list[Callback] = (),
    splits: Splits | None = None,
    parent_run_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
    resume_run_id: str | None = None,
) -> Outcome:
    """Trains cfg's model, observed by one tracker that records the run; the run keeps a
    checkpoint of its last complete epoch (checkpoint_file) until it finishes.

    Args:
        data_dir: where a built-in dataset's files are; ignored when `splits` are given.
        tracking_uri: the MLflow store when `tracking` is None (else as resolve_uri finds it).
        tracking: where the run is recorded: MlflowTracking(uri), NoTracking() or a double.
        callbacks: observers of the training loop, called before the tracker.
        parent_run_id, extra_tags: nest the run under a parent; tag it further.
        resume_run_id: a run of this config cut short: it goes on from its checkpoint in the
            same MLflow run (CheckpointError, with nothing written, when the checkpoint is
            missing, damaged, or another run's, config's, data's or model's).

    Returns: the Outcome: run id (None when untracked), result, summary and trained model.
    """
    if splits is None and cfg.data.dataset == FOLDER:
        splits = load_splits(cfg, data_dir)  # its shape comes from its images: read them once
    built = build(cfg, None if splits is None else DatasetInfo.of(splits), data_dir)
    if tracking is None:
        tracking = MlflowTracking(resolve_uri(cfg.tracking, tracking_uri))
    tracking.check()  # a server that is not there fails in seconds, before data is loaded
    splits = splits if splits is not None else load_splits(cfg, data_dir)
    saved = checkpoint_to_resume(tracking.uri, resume_run_id, cfg, splits, built.model)
    data_tags = {DATA_NOTE_TAG: splits.note} if splits.note else {}
    resumed = {RESUMED_TAG: str(saved["epoch"])} if saved is not None else {}
    tracker = tracking.tracker(
        RunSpec(
            cfg.tracking.experiment,
            params={**flatten(cfg), **architecture_params(built.summary, splits.num_classes)},
            tags={MODEL_TAG: cfg.model.name, **data_tags, **resumed, **(extra_tags or {})},
            artifacts={
                "config.toml": to_toml(cfg),
                "architecture.txt": format_summary(built.summary),
                "architecture.json": json.dumps(built.summary.to_dict(), indent=2),
            },
            run_name=cfg.tracking.run_name or default_run_name(cfg),
            parent_run_id=parent_run_id,
            log_weights=cfg.tracking.log_weights,
            data_checksum=splits.checksum,
            resume_run_id=resume_run_id,
            log_checkpoint=cfg.tracking.log_checkpoint,
        )
    )
    observers = [*callbacks, *_model_logger(cfg, tracker, splits), tracker]
    with tracker:
        store = getattr(tracker, "store", None)  # where the tracker logs, when it is MLflow
        observers += checkpointer(tracking.uri, tracker.run_id, cfg, splits, store)
        result = fit(built.model, splits, cfg.train, observers, resume=saved)
    experiment, uri = cfg.tracking.experiment, tracking.uri
    stats = (splits.mean, splits.std)
    return Outcome(tracker.run_id, experiment, uri, result, built.summary, built.model, stats)


def _model_logger(cfg: Config, tracker: Any, splits: Splits) -> list[Callback]:
    """The MLflow model's logger, when the config asks for one and the run's tracker can keep
    a folder with the run (whichever destination it records to)."""
    if not (cfg.tracking.log_model and tracker.logs_folders):
        return []
    from cnnlab.export import ModelLogger  # loads MLflow's model flavour: only when asked

    return [ModelLogger(tracker, cfg.model, splits)]


def resume_or_train(cfg: Config, cut_run_id: str | None, train=None, **kwargs) -> Outcome:
    """A rerun's way with a run it cut short (a search's trial, a study's run): continued from
    its checkpoint when it has one, else trained afresh by `train` (train_run's signature;
    default train_run). A checkpoint that cannot be resumed (damaged, or of another config) is
    passed over with a warning."""
    train = train or train_run
    uri = resolve_uri(cfg.tracking, kwargs.get("tracking_uri"))
    if cut_run_id and fetch_checkpoint(uri, cut_run_id):
        try:
            return train(cfg, resume_run_id=cut_run_id, **kwargs)
        except CheckpointError as exc:
            log.warning("cnnlab: %s; run %s starts again from its first epoch", exc, cut_run_id)
    return train(cfg, **kwargs)


def default_run_name(cfg: Config) -> str:
    """Family, time and a random suffix: MLflow's own names repeat once `random` is seeded."""
    return f"{cfg.model.name}-{time.strftime('%m%d-%H%M%S')}-{secrets.token_hex(2)}"
