"""Going on with a run cut short: which checkpoint may be resumed (this run's, config's and
data's), and which runs can be continued at all. The checkpoint's file format is
training's (Checkpointer, load_checkpoint); where it is kept is tracking's (checkpoint_file)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from cnnlab.config import Config, ConfigError, TrackingConfig, load_config, to_toml
from cnnlab.data import Splits
from cnnlab.tracking import MlflowTracking, Store, checkpoint_file, resolve_uri, shown, store_file
from cnnlab.training import Callback, Checkpointer, CheckpointError, load_checkpoint


def _identity(cfg: Config, splits: Splits, run_id: str) -> dict[str, str]:
    """What a checkpoint must have been written for to be resumed: this run, config and data."""
    config = hashlib.sha256(to_toml(cfg).encode()).hexdigest()[:16]
    return {"run": run_id, "config": config, "data": splits.checksum or ""}


def checkpointer(uri: str | None, run_id: str | None, cfg, splits) -> list[Callback]:
    if uri is None or run_id is None:  # a run recorded nowhere cannot be resumed
        return []
    return [Checkpointer(checkpoint_file(uri, run_id), _identity(cfg, splits, run_id))]


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
    if not path.is_file():
        raise ConfigError(
            f"resume: run {run_id} has no checkpoint ({path} is missing; "
            "one is written at the end of every epoch)"
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
