"""One run: a config checked, its architecture, a model trained, a logged run loaded back."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from cnnlab.api._common import ConfigSource, Overrides, _frame, _isolated, _override_items
from cnnlab.api._results import RunResult
from cnnlab.config import Config, ConfigError, apply_override, from_dict, to_dict


def load_config(source: ConfigSource = None, overrides: Overrides = ()) -> Config:
    """A checked config, parsed as strictly as the CLI parses it.

    Args:
        source: a TOML file's path, a dict of sections (`{"train": {"lr": 3e-4}}`), a Config,
            or None for the defaults.
        overrides: `["train.lr=3e-4"]` as `--set` takes them, or `{"train.lr": 3e-4}`.

    Returns: a Config. Raises ConfigError naming the key, the expected and the actual value.
    """
    from cnnlab.config import load_config as load_file

    items = _override_items(overrides)
    if isinstance(source, Config):
        source = to_dict(source)
    if isinstance(source, Mapping):
        raw = copy.deepcopy(dict(source))
        for item in items:
            apply_override(raw, item)
        return from_dict(raw)
    return load_file(source, items)


@_isolated
def summary(config: ConfigSource = None, overrides: Overrides = ()):
    """The architecture the config builds, layer by layer (shapes, parameters, multiply-adds,
    final map, warnings), without loading data. Returns a ModelSummary (a table in Jupyter)."""
    from cnnlab.runs import build

    return build(load_config(config, overrides)).summary


@_isolated
def train(
    config: ConfigSource = None,
    overrides: Overrides = (),
    *,
    data_dir: str | None = None,
    tracking_uri: str | None = None,
    track: bool = True,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
    resume: str | None = None,
) -> RunResult:
    """Trains one model; with track=True it is one MLflow run, as `cnnlab train` makes.

    Args:
        config, overrides: as for load_config.
        data_dir: where a built-in dataset's files are (default: found or downloaded, as the
            CLI does); a folder dataset is at data.path.
        tracking_uri: the MLflow store (default: MLFLOW_TRACKING_URI, tracking.uri, then
            ./cnnlab-runs).
        track: False trains without MLflow (run_id is then None).
        progress: one progress bar over the epochs (a widget in Jupyter).
        callbacks: cnnlab.training.Callback objects that observe the training loop.
        resume: the id of a run cut short (RUNNING, KILLED or FAILED), continued in the same
            MLflow run from the checkpoint of its last complete epoch, with the config it
            logged: no config or overrides then. ConfigError, with nothing written, when the
            run is FINISHED, unknown, or has no checkpoint that is its own.

    Returns: a RunResult with the run id, end-of-run metrics, the per-epoch history as a
    DataFrame, the trained model in eval mode and the loop's own FitResult (`fit`).
    """
    from cnnlab.runs import resume_config, train_run
    from cnnlab.tracking import NoTracking, run_id_of
    from cnnlab.training import EpochBar

    resume = None if resume is None else run_id_of(resume)
    if resume is None:
        cfg = load_config(config, overrides)
    elif config is not None or overrides or not track:
        raise ConfigError(
            f"resume: run {resume} goes on with the config it logged, tracked; "
            "expected no config, no overrides and track=True"
        )
    else:
        cfg, tracking_uri = resume_config(resume, tracking_uri)
    observers = [*callbacks, *([EpochBar()] if progress else [])]
    tracking = None if track else NoTracking()  # None: the store tracking_uri or cfg names
    outcome = train_run(
        cfg,
        data_dir=data_dir,
        tracking_uri=tracking_uri,
        tracking=tracking,
        callbacks=observers,
        resume_run_id=resume,
    )
    r = outcome.result
    metrics = {
        k: getattr(r, k)
        for k in ("test_accuracy", "test_loss", "best_val_accuracy", "best_val_loss")
    }
    metrics |= {"best_epoch": r.best_epoch, "epochs_run": r.epochs_run, "seconds": r.seconds}
    metrics["images_seen"] = r.images_seen
    history = _frame([{"epoch": m.epoch, **m.as_dict()} for m in r.history])
    outcome.model.eval()
    artifacts = _artifact_uri(outcome.tracking_uri, outcome.run_id)
    return RunResult(
        outcome.run_id,
        outcome.experiment,
        outcome.tracking_uri,
        cfg,
        metrics,
        history,
        outcome.model,
        artifacts,
        data_dir,
        outcome.result,
        outcome.pixel_stats,
    )


@_isolated
def load_run(
    run: str, *, tracking_uri: str | None = None, runs_dir: str = "cnnlab-runs"
) -> RunResult:
    """A logged run back from any MLflow store: its config, metrics, history and its model with
    the logged weights, in eval mode and laid out as it was trained, ready for `predict`.

    Args:
        run: a run id, "runs:/<run id>" or "runs:/<run id>/<path>".
        tracking_uri / runs_dir: the store (as for train).
    """

    from cnnlab.config import TrackingConfig
    from cnnlab.tracking import open_store, resolve_uri, run_id_of, shown

    run_id = run_id_of(run)
    uri = resolve_uri(TrackingConfig(runs_dir=runs_dir), tracking_uri)
    store = open_store(uri)  # within seconds: exit 2 (no store), 5 (no answer), 7 (refused)
    info = store.find_run(run_id)
    if info is None:
        raise ConfigError(f"run {run_id!r}: expected a run in {shown(uri)}, got no such run")
    cfg, model = _rebuilt(store, run_id)
    metrics = dict(info.data.metrics)
    history = _frame(_history(store, run_id, metrics))
    artifacts = info.info.artifact_uri
    experiment = store.experiment(info.info.experiment_id).name
    return RunResult(run_id, experiment, uri, cfg, metrics, history, model, artifacts, None)


def load_model(run: str, *, tracking_uri: str | None = None, runs_dir: str = "cnnlab-runs"):
    """A logged run's network with its weights (torch.nn.Module, eval mode)."""
    return load_run(run, tracking_uri=tracking_uri, runs_dir=runs_dir).model


# ---------------------------------------------------------------- helpers


def _artifact_uri(uri: str | None, run_id: str | None) -> str | None:
    if not uri or not run_id:
        return None
    from cnnlab.tracking import Store

    return Store(uri).get_run(run_id).info.artifact_uri


def _rebuilt(store, run_id: str) -> tuple[Config, Any]:
    """The logged model, laid out as it trained (channels_last, the fused first block)."""
    import torch

    from cnnlab.export import logged_input, logged_model
    from cnnlab.training import Runtime

    cfg, model = logged_model(store, run_id)
    shape, _ = logged_input(store, run_id, cfg)  # the kernel is timed on the run's images
    Runtime.from_config(cfg.train, torch.device("cpu"), model).prepare(model, shape)
    return cfg, model.eval()


def _history(store, run_id: str, metrics: dict[str, float]) -> list[dict[str, Any]]:
    keys = ("train_loss", "val_loss", "val_accuracy", "lr", "images_seen", "epoch_seconds")
    by_epoch: dict[int, dict[str, Any]] = {}
    for key in keys:
        if key in metrics:
            for step, value in store.metric_history(run_id, key):
                by_epoch.setdefault(step, {"epoch": step})[key] = value
    return [by_epoch[e] for e in sorted(by_epoch)]
