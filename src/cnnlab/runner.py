"""One training run end to end, in the order that keeps bad input cheap:

check the architecture (no data, no run) -> load and verify data (no run) -> open the MLflow run
-> fit -> close the run with the right status.

    outcome = train_run(load_config("configs/default.toml"))
    outcome.run_id, outcome.result.test_accuracy
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.config import Config, flatten, to_toml
from cnnlab.data import FOLDER, DatasetInfo, Splits, dataset_info, load_data, make_splits
from cnnlab.models import (
    BUILT_IN_MODELS,
    ArchitectureError,
    ModelSummary,
    check_architecture,
    create_model,
    format_summary,
    summarize,
)
from cnnlab.tracking import MlflowTracking, RunSpec, Store, Tracking, resolve_uri
from cnnlab.tracking._tracker import CHECKPOINT, checkpoint_dir
from cnnlab.training import (
    Callback,
    Checkpointer,
    CheckpointError,
    FitResult,
    fit,
    load_checkpoint,
    seed_everything,
)

log = logging.getLogger(__name__)


@dataclass
class Built:
    model: Any
    summary: ModelSummary


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


def build(cfg: Config, info: DatasetInfo | None = None, data_dir: str | None = None) -> Built:
    """Checks the architecture by arithmetic, builds it, and dissects it by a dry run.

    The input shape and classes come from `info`, else from the config's dataset (a folder's
    are read from its images: DataError when they cannot be trusted)."""
    info = info or dataset_info(cfg.data, data_dir)
    input_shape, classes = info.input_shape, info.num_classes
    check_architecture(cfg.model, input_shape, classes)
    seed_everything(cfg.train.seed)  # initial weights depend on the seed alone
    if cfg.model.name in BUILT_IN_MODELS:
        model = create_model(cfg.model, input_shape, classes)
        return Built(model, summarize(model, input_shape))
    return _build_user_family(cfg, input_shape, classes)


def _build_user_family(cfg: Config, input_shape, classes: int) -> Built:
    """A family registered by the user has no arithmetic check of its own unless it brought
    one: its dry run stands in, so a network that cannot take the input (or gives the wrong
    number of outputs) is refused as an impossible architecture before any data is loaded."""
    import torch

    name = cfg.model.name
    try:
        model = create_model(cfg.model, input_shape, classes)
        summary = summarize(model, input_shape)
        with torch.no_grad():
            shape = tuple(model.eval()(torch.zeros(2, *input_shape)).shape)
        model.train()
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArchitectureError(
            f"model: family {name!r} fails on a {'x'.join(map(str, input_shape))} input: {first}"
        ) from None
    if shape != (2, classes):
        raise ArchitectureError(
            f"model: family {name!r} gives outputs of shape {list(shape[1:])} per image, "
            f"expected [{classes}] (one logit per class)"
        )
    return Built(model, summary)


def logged_model(store: Store, run_id: str) -> tuple[Config, Any]:
    """A logged run's config and its network with the logged weights (training mode, CPU).

    ConfigError when the run logged no config or no weights."""
    import tempfile
    from pathlib import Path

    import torch

    from cnnlab.config import ConfigError, load_config

    with tempfile.TemporaryDirectory() as tmp:
        try:
            cfg_path = store.download_artifacts(run_id, "config.toml", tmp)
            weights = store.download_artifacts(run_id, "model/state_dict.pt", tmp)
        except FileNotFoundError:  # a refusal or an outage is not "no model": it goes on up
            raise ConfigError(
                f"run {run_id!r}: no model to load (config.toml and model/state_dict.pt "
                "are logged by runs with tracking.log_weights = true)"
            ) from None
        cfg = load_config(Path(cfg_path))
        state = torch.load(weights, weights_only=True, map_location="cpu")
        input_shape, classes = _logged_io(store, run_id, cfg, tmp)
    model = create_model(cfg.model, input_shape, classes)
    model.load_state_dict(state)
    return cfg, model


def _logged_io(store: Store, run_id: str, cfg: Config, tmp: str) -> tuple[tuple[int, ...], int]:
    """A built-in dataset's shape is the registry's; a folder's is what the run logged (the
    folder need not exist where the model is loaded)."""
    if cfg.data.dataset != FOLDER:
        info = dataset_info(cfg.data)
        return info.input_shape, info.num_classes
    path = store.download_artifacts(run_id, "architecture.json", tmp)
    with open(path) as f:
        logged = json.load(f)
    return tuple(logged["input_shape"]), logged["layers"][-1]["out_shape"][0]


def load_splits(cfg: Config, data_dir: str | None = None) -> Splits:
    raw = load_data(cfg.data, data_dir)
    if raw.note:
        log.warning("cnnlab: %s", raw.note)
    return make_splits(raw, cfg.data.val_fraction, cfg.data.train_limit, cfg.data.split_seed)


def architecture_params(summary: ModelSummary, classes: int | None = None) -> dict[str, Any]:
    """The facts of the built model, logged beside the config so every run shows what it trained
    (the classes too: a loss is read against that of a uniform guess, ln(classes))."""
    facts: dict[str, Any] = {
        "arch.total_params": summary.total_params,
        "arch.macs_per_image": summary.total_macs,
    }
    if classes is not None:
        facts["arch.classes"] = classes
    if summary.final_map is not None:
        facts["arch.final_map"] = "x".join(map(str, summary.final_map))
        facts["arch.spatial_chain"] = " -> ".join(map(str, summary.spatial_chain))
    return facts


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
    saved = _checkpoint_to_resume(tracking.uri, resume_run_id, cfg, splits, built.model)
    data_tags = {"cnnlab.data_note": splits.note} if splits.note else {}
    resumed = {"cnnlab.resumed_after_epoch": str(saved["epoch"])} if saved is not None else {}
    tracker = tracking.tracker(
        RunSpec(
            cfg.tracking.experiment,
            params={**flatten(cfg), **architecture_params(built.summary, splits.num_classes)},
            tags={"cnnlab.model": cfg.model.name, **data_tags, **resumed, **(extra_tags or {})},
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
        observers += _checkpointer(tracking.uri, tracker.run_id, cfg, splits)
        result = fit(built.model, splits, cfg.train, observers, resume=saved)
    experiment, uri = cfg.tracking.experiment, tracking.uri
    stats = (splits.mean, splits.std)
    return Outcome(tracker.run_id, experiment, uri, result, built.summary, built.model, stats)


def _model_logger(cfg: Config, tracker: Any, splits: Splits) -> list[Callback]:
    """The MLflow model's logger, when the config asks for one and the run's tracker can keep
    a folder with the run (whichever destination it records to)."""
    if not (cfg.tracking.log_model and tracker.logs_folders):
        return []
    from cnnlab.export import ModelLogger

    return [ModelLogger(tracker, cfg.model, splits)]


def checkpoint_file(uri: str, run_id: str) -> Path:
    """A run's checkpoint: <folder of mlflow.db>/checkpoints/<run id>/last.pt; a server's runs
    keep theirs in the user cache. Written after every epoch, deleted when the run finishes."""
    return checkpoint_dir(uri, run_id) / CHECKPOINT


def _identity(cfg: Config, splits: Splits, run_id: str) -> dict[str, str]:
    """What a checkpoint must have been written for to be resumed: this run, config and data."""
    config = hashlib.sha256(to_toml(cfg).encode()).hexdigest()[:16]
    return {"run": run_id, "config": config, "data": splits.checksum or ""}


def _checkpointer(uri: str | None, run_id: str | None, cfg, splits) -> list[Callback]:
    if uri is None or run_id is None:  # a run recorded nowhere cannot be resumed
        return []
    return [Checkpointer(checkpoint_file(uri, run_id), _identity(cfg, splits, run_id))]


def _checkpoint_to_resume(uri, run_id, cfg: Config, splits: Splits, model) -> dict | None:
    """The checked checkpoint of `run_id`, read before anything of the run is written."""
    if run_id is None:
        return None
    if uri is None:
        raise CheckpointError(f"resume: run {run_id} cannot go on where runs are not recorded")
    return load_checkpoint(checkpoint_file(uri, run_id), _identity(cfg, splits, run_id), model)


def resume_or_train(cfg: Config, cut_run_id: str | None, train=None, **kwargs) -> Outcome:
    """A rerun's way with a run it cut short (a search's trial, a study's run): continued from
    its checkpoint when it has one, else trained afresh by `train` (train_run's signature;
    default train_run). A checkpoint that cannot be resumed (damaged, or of another config) is
    passed over with a warning."""
    train = train or train_run
    uri = resolve_uri(cfg.tracking, kwargs.get("tracking_uri"))
    if cut_run_id and checkpoint_file(uri, cut_run_id).is_file():
        try:
            return train(cfg, resume_run_id=cut_run_id, **kwargs)
        except CheckpointError as exc:
            log.warning("cnnlab: %s; run %s starts again from its first epoch", exc, cut_run_id)
    return train(cfg, **kwargs)


# A run in these states may have been cut short; a FINISHED one has nothing left to do.
RESUMABLE = ("RUNNING", "KILLED", "FAILED")


def resume_config(run_id: str, tracking_uri: str | None = None) -> tuple[Config, str]:
    """The config run `run_id` logged and the URI of its store, when the run can be continued;
    ConfigError in one line, with nothing written, for a missing store, an unknown, deleted or
    FINISHED run, or one without a checkpoint. The store: tracking_uri, MLFLOW_TRACKING_URI,
    else ./cnnlab-runs."""
    import tempfile

    from cnnlab.config import ConfigError, TrackingConfig, load_config
    from cnnlab.tracking import store_file

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
    from cnnlab.config import ConfigError
    from cnnlab.tracking import shown

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


def default_run_name(cfg: Config) -> str:
    """Family, time and a random suffix: MLflow's own names repeat once `random` is seeded."""
    return f"{cfg.model.name}-{time.strftime('%m%d-%H%M%S')}-{secrets.token_hex(2)}"
