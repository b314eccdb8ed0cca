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
from cnnlab.training import Callback, FitResult, fit, seed_everything

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
        except Exception as exc:  # MlflowException or OSError: the artifact is not there
            raise ConfigError(
                f"run {run_id!r}: no model to load (config.toml and model/state_dict.pt "
                "are logged by runs with tracking.log_weights = true)"
            ) from exc
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


def architecture_params(summary: ModelSummary) -> dict[str, Any]:
    """The facts of the built model, logged beside the config so every run shows what it trained."""
    facts: dict[str, Any] = {
        "arch.total_params": summary.total_params,
        "arch.macs_per_image": summary.total_macs,
    }
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
) -> Outcome:
    """Trains cfg's model, observed by one tracker that records the run.

    Args:
        data_dir: where a built-in dataset's files are; ignored when `splits` are given.
        tracking_uri: the MLflow store when `tracking` is None (else as resolve_uri finds it).
        tracking: where the run is recorded: MlflowTracking(uri), NoTracking() or a double.
        callbacks: observers of the training loop, called before the tracker.
        parent_run_id, extra_tags: nest the run under a parent; tag it further.

    Returns: the Outcome: run id (None when untracked), result, summary and trained model.
    """
    info = None
    if splits is not None:
        known = len(splits.train_x) + len(splits.val_x)
        info = DatasetInfo(splits.input_shape, tuple(splits.class_names), known)
    built = build(cfg, info, data_dir)
    if tracking is None:
        tracking = MlflowTracking(resolve_uri(cfg.tracking, tracking_uri))
    tracking.check()  # a server that is not there fails in seconds, before data is loaded
    splits = splits if splits is not None else load_splits(cfg, data_dir)
    data_tags = {"cnnlab.data_note": splits.note} if splits.note else {}
    tracker = tracking.tracker(
        RunSpec(
            cfg.tracking.experiment,
            params={**flatten(cfg), **architecture_params(built.summary)},
            tags={"cnnlab.model": cfg.model.name, **data_tags, **(extra_tags or {})},
            artifacts={
                "config.toml": to_toml(cfg),
                "architecture.txt": format_summary(built.summary),
                "architecture.json": json.dumps(built.summary.to_dict(), indent=2),
            },
            run_name=cfg.tracking.run_name or default_run_name(cfg),
            parent_run_id=parent_run_id,
            log_weights=cfg.tracking.log_weights,
            data_checksum=splits.checksum,
        )
    )
    with tracker:
        result = fit(built.model, splits, cfg.train, [*callbacks, tracker])
    experiment, uri = cfg.tracking.experiment, tracking.uri
    return Outcome(tracker.run_id, experiment, uri, result, built.summary, built.model)


def default_run_name(cfg: Config) -> str:
    """Family, time and a random suffix: MLflow's own names repeat once `random` is seeded."""
    return f"{cfg.model.name}-{time.strftime('%m%d-%H%M%S')}-{secrets.token_hex(2)}"
