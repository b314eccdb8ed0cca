"""Going on with a run cut short: which checkpoint may be resumed (this run's, config's and
data's), and which runs can be continued at all. The checkpoint's file format is
training's (Checkpointer, load_checkpoint); where it is kept is tracking's (checkpoint_file)."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from cnnlab.config import Config, ConfigError, TrackingConfig, load_config, to_toml
from cnnlab.data import Splits
from cnnlab.tracking import (
    MlflowTracking,
    Store,
    TrackingDenied,
    checkpoint_file,
    resolve_uri,
    shown,
    store_file,
)
from cnnlab.training import Callback, Checkpointer, CheckpointError, load_checkpoint

log = logging.getLogger("cnnlab")
LOGGED_CHECKPOINT = "checkpoint"  # the artifact folder of a logged checkpoint (last.pt in it)


def _identity(cfg: Config, splits: Splits, run_id: str) -> dict[str, str]:
    """What a checkpoint must have been written for to be resumed: this run, config and data."""
    config = hashlib.sha256(to_toml(cfg).encode()).hexdigest()[:16]
    return {"run": run_id, "config": config, "data": splits.checksum or ""}


def checkpointer(uri: str | None, run_id: str | None, cfg, splits, store=None) -> list[Callback]:
    """The run's Checkpointer, and with tracking.upload_checkpoint (and a `store` to log to)
    its upload after every epoch."""
    if uri is None or run_id is None:  # a run recorded nowhere cannot be resumed
        return []
    path = checkpoint_file(uri, run_id)
    written = [Checkpointer(path, _identity(cfg, splits, run_id))]
    if cfg.tracking.upload_checkpoint and store is not None:
        written.append(CheckpointUpload(store, run_id, path))
    return written


class CheckpointUpload(Callback):
    """Logs the checkpoint the Checkpointer (the callback before it) has just written as the
    run's artifact checkpoint/last.pt, so that another machine can go on from it. An upload
    that fails is a warning: the run goes on, and the next epoch's upload tries again."""

    def __init__(self, store: Store, run_id: str, path: Path):
        self.store, self.run_id, self.path = store, run_id, path

    def on_epoch_closed(self, state) -> None:
        if not self.path.is_file():
            return
        try:
            self.store.log_artifact(self.run_id, self.path, LOGGED_CHECKPOINT)
        except TrackingDenied:
            raise  # a refusal is an answer: every later upload would get it too
        except Exception as exc:  # an outage has many faces; this epoch's copy is only a copy
            log.warning("cnnlab: epoch %d's checkpoint not uploaded: %s", state.epoch, exc)


def fetch_checkpoint(uri: str, run_id: str) -> bool:
    """Whether run_id's checkpoint is here: the file this machine wrote, else the one the run
    logged (tracking.upload_checkpoint or log_checkpoint), downloaded to where that file goes.
    The file appears whole or not at all."""
    path = checkpoint_file(uri, run_id)
    if path.is_file():
        return True
    path.parent.mkdir(parents=True, exist_ok=True)
    # Downloaded beside its place, then renamed: a failed download leaves nothing behind.
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        try:
            got = Store(uri).download_artifacts(run_id, f"{LOGGED_CHECKPOINT}/{path.name}", tmp)
        except FileNotFoundError:
            return False
        os.replace(got, path)
    return True


def checkpoint_to_resume(uri, run_id, cfg: Config, splits: Splits, model) -> dict | None:
    """The checked checkpoint of `run_id`, read before anything of the run is written."""
    if run_id is None:
        return None
    if uri is None:
        raise CheckpointError(f"resume: run {run_id} cannot go on where runs are not recorded")
    return load_checkpoint(checkpoint_file(uri, run_id), _identity(cfg, splits, run_id), model)


# A run in these states may have been cut short; a FINISHED one has nothing left to do.
RESUMABLE = ("RUNNING", "KILLED", "FAILED")


def resume_config(run_id: str, tracking_uri: str | None = None) -> tuple[Config, str]:
    """The config run `run_id` logged and the URI of its store, when the run can be continued;
    ConfigError in one line, with nothing written, for a missing store, an unknown, deleted or
    FINISHED run, or one without a checkpoint. The store: tracking_uri, MLFLOW_TRACKING_URI,
    else ./cnnlab-runs."""
    uri = resolve_uri(TrackingConfig(), tracking_uri)
    found = store_file(uri)
    if found is not None and not found.is_file():
        raise ConfigError(f"resume: no run store at {found} (expected --tracking-uri to name it)")
    MlflowTracking(uri).check()
    store = Store(uri)
    _check_resumable(store, run_id, uri)
    path = checkpoint_file(uri, run_id)
    if not fetch_checkpoint(uri, run_id):
        raise ConfigError(
            f"resume: run {run_id} has no checkpoint ({path} is missing, one is written at the "
            "end of every epoch; nor did the run log one: tracking.upload_checkpoint)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            logged = store.download_artifacts(run_id, "config.toml", tmp)
        except FileNotFoundError:
            raise ConfigError(f"resume: run {run_id} logged no config.toml") from None
        try:
            return load_config(Path(logged)), uri
        except ConfigError as exc:
            raise ConfigError(f"resume: run {run_id}'s config.toml: {exc}") from None


def _check_resumable(store: Store, run_id: str, uri: str) -> None:
    run = store.find_run(run_id)
    if run is None:
        raise ConfigError(f"resume: no run {run_id!r} in {shown(uri)}")
    if run.info.lifecycle_stage == "deleted":
        raise ConfigError(f"resume: run {run_id} is deleted")
    if run.info.status not in RESUMABLE:
        raise ConfigError(
            f"resume: run {run_id} is {run.info.status}; "
            f"expected a run cut short ({', '.join(RESUMABLE)})"
        )
