"""cnnlab's public functions: everything the command line does, as calls that return results.

    import cnnlab
    cfg = cnnlab.load_config({"model": {"filters": 32}, "train": {"epochs": 2}})
    cnnlab.summary(cfg)                          # the layer table, before any data is loaded
    run = cnnlab.train(cfg)                      # RunResult: run_id, metrics, history, model
    search = cnnlab.tune("configs/study-search.toml", engine="optuna", trials=8)
    search.trials                                # one DataFrame row per trial
    model = cnnlab.load_model(search.best_run_id)

Errors are exceptions with the one-line messages the CLI prints (ConfigError for bad input,
DataError for data, TrackingUnavailable for a server that is not there); exit codes belong to
the CLI alone.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.api._results import ReportResult, RunResult, StudyResult, TuneResult

if TYPE_CHECKING:
    from cnnlab.advisor import Advice
from cnnlab.config import Config, ConfigError, apply_override, from_dict, override_text, to_dict

ConfigSource = str | Path | Mapping[str, Any] | Config | None
Overrides = Sequence[str] | Mapping[str, Any]


def _isolated(function: Callable) -> Callable:
    """Leaves the process as the call found it: a notebook calls the API again and again, so
    the thread count training sets, the environment settings tracking sets (MLflow's
    telemetry switch, its HTTP timeouts) and the random generators that building a model seeds
    are put back when the call returns or raises: the next cell draws what it would have."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        import torch

        environ, threads = dict(os.environ), torch.get_num_threads()
        try:
            with _kept_generators():
                return function(*args, **kwargs)
        finally:
            for key in set(os.environ) - set(environ):
                del os.environ[key]
            os.environ.update(environ)
            torch.set_num_threads(threads)

    return call


@contextlib.contextmanager
def _kept_generators():
    """Python's, numpy's, torch's and (once started) CUDA's random generators, put back after."""
    import random

    import numpy as np
    import torch

    python, numpy = random.getstate(), np.random.get_state()
    # Only GPUs already started: isolating a call must not start CUDA.
    gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=gpus):
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


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
    from cnnlab.runner import build

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
    from cnnlab.runner import resume_config, train_run
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
def tune(
    config: ConfigSource = None,
    overrides: Overrides = (),
    *,
    engine: str | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    data_dir: str | None = None,
    tracking_uri: str | None = None,
    progress: bool = True,
    on_trial: Callable[[Any], None] | None = None,
    jobs: int = 1,
) -> TuneResult:
    """Searches the config's [search.space], as `cnnlab tune` does; rerun to resume.

    Args:
        config, overrides: as for load_config; the config needs a [search.space].
        engine: "hyperopt" or "optuna" (default: search.engine).
        trials: trials in total, across resumes (default: search.trials).
        timeout: seconds after which no new trial starts (default: search.timeout).
        data_dir, tracking_uri: as for train.
        progress: one progress bar over the trials.
        on_trial: called with each trial's TrialRecord as it ends.
        jobs: trials at once, each in a worker process pinned to its share of the cores, on
            one Optuna study (search.storage, or a journal file beside the store); Optuna only.
            TPE's proposals after its random start then differ from one job's.

    Returns: a TuneResult: the trials as a DataFrame (number, state, value, epochs, seconds,
    run_id, reason and one column per searched key), the best trial's params, value, run id
    and whole config, and the parent run id.
    """
    from cnnlab.config import SearchConfig
    from cnnlab.search import counts_as_trial, run_search, trial_config

    items = _override_items(overrides)
    for key, value in (("engine", engine), ("trials", trials), ("timeout", timeout)):
        if value is not None:
            items.append(override_text(f"search.{key}", value))
    cfg = load_config(config, items)
    bar = _bar(cfg.search.trials, "trials") if progress else None

    def observe(record) -> None:
        # Samples drawn again do not count as trials.
        if bar is not None and counts_as_trial(record, cfg.search.count_invalid):
            bar.update(1)
        if on_trial is not None:
            on_trial(record)

    try:
        result = run_search(
            cfg, tracking_uri=tracking_uri, data_dir=data_dir, on_trial=observe, jobs=jobs
        )
    finally:
        if bar is not None:
            bar.close()
    from cnnlab.export import register_best

    registered = register_best(result, cfg.search.register)
    best = result.best
    best_config = None
    if best is not None:
        best_config = dataclasses.replace(trial_config(cfg, best.params), search=SearchConfig())
    return TuneResult(
        result.parent_run_id,
        result.search_id,
        result.engine,
        result.objective,
        _trials_frame(result.records),
        best.value if best else None,
        dict(best.params) if best else None,
        best.run_id if best else None,
        best_config,
        result.tracking_uri,
        result,
        registered,
    )


@_isolated
def run_study(
    folder: str | Path = "experiments",
    *,
    quick: bool = False,
    only: str | None = None,
    seeds: int | list[int] | None = None,
    out: str | Path = "report",
    tracking_uri: str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    jobs: int | None = None,
    until_decided: bool = False,
    max_seeds: int | None = None,
) -> StudyResult:
    """Runs a study folder step by step (each variant once per seed, resuming what is done),
    then writes its report, as `cnnlab study` does.

    Args:
        folder: the study's step files. quick: tiny runs, a smoke test. only: one step.
        seeds: a count or a list replacing every train step's seeds.
        out: the report's folder.
        progress: one progress bar over the runs (a widget in Jupyter).
        echo: where a line per step and per run goes, with its figures and the time left
            (e.g. print; None: nowhere).
        jobs: train runs at once, each in a worker process pinned to its share of the cores;
            the same runs and, for a fixed `train.threads`, the same figures as one at a time.
            None: one per 4 cores (one on a 2-core machine, where that measured fastest).
        until_decided: then add rounds of seeds (as many as a step started with) to the
            variants each open hypothesis compares, until every one is confirmed or refuted
            or has `max_seeds` seeds per arm (default 10). Each step planned this way judges
            its K looks at level 0.025 / K, so stopping at a decision confirms a false claim
            at most 2.5% of the time; the report lists the seeds added and why.

    Returns: a StudyResult with each step's outcome and the report's paths.
    """
    from cnnlab.study import check_max_seeds
    from cnnlab.study import run_study as run_steps

    check_max_seeds(max_seeds, until_decided)

    bar = _bar(None, "runs") if progress else None

    def on_run(done: int, planned: int) -> None:
        bar.total = planned
        bar.update(done - bar.n)

    try:
        steps, uri = run_steps(
            Path(folder),
            quick=quick,
            only=only,
            seeds=seeds,
            tracking_uri=tracking_uri,
            data_dir=data_dir,
            echo=echo or (lambda text: None),
            on_run=on_run if bar is not None else None,
            jobs=jobs,
            until_decided=until_decided,
            max_seeds=max_seeds,
        )
    finally:
        if bar is not None:
            bar.close()
    written = report([s.experiment for s in steps], out=out, tracking_uri=uri, data_dir=data_dir)
    return StudyResult(steps, uri, written)


@_isolated
def report(
    experiments: Sequence[str] | None = None,
    *,
    out: str | Path = "report",
    tracking_uri: str | None = None,
    runs_dir: str = "cnnlab-runs",
    data_dir: str | None = None,
) -> ReportResult:
    """Writes report.md, report.html and SVG plots from what MLflow recorded.

    Args:
        experiments: names to report (default: every experiment but Default).
        out: the folder written. tracking_uri / runs_dir: the store (as for train).
        data_dir: where the test set is, for the best model's confusion matrix.

    Returns: a ReportResult with the paths written.
    """
    from cnnlab.config import TrackingConfig
    from cnnlab.reports import confusion_from_run, write_report
    from cnnlab.tracking import resolve_uri

    uri = resolve_uri(TrackingConfig(runs_dir=runs_dir), tracking_uri)

    def confusion(run):
        return confusion_from_run(uri, run, data_dir)

    def next_steps(names: list[str]):
        from cnnlab.advisor import advise as run_advise

        return run_advise(uri, names, Path(out) / "next", "cnnlab report").section()

    names = list(experiments) if experiments is not None else None
    paths = write_report(uri, names, Path(out), confusion=confusion, advice=next_steps)
    return ReportResult(paths[-2], paths[-1], paths[:-2])


@_isolated
def advise(
    study_dir: str | Path | None = None,
    *,
    experiments: Sequence[str] | None = None,
    out: str | Path | None = "advice",
    tracking_uri: str | None = None,
    runs_dir: str = "cnnlab-runs",
) -> Advice:
    """Reads a study's runs as MLflow recorded them and says what went wrong in each step (the
    rule, and the numbers that fired it) and what to try next, as step files; trains nothing.

    Args:
        study_dir: a study folder: its steps that have run (`<folder name>/<step>`).
        experiments: experiment names instead (default, with no study_dir: every experiment).
        out: where the proposed step files go (None: written nowhere).
        tracking_uri / runs_dir: the store (as for train).

    Returns: an Advice: its ranked diagnoses, each proposal's file, `to_json()`, `section()`.
    """
    from cnnlab.advisor import advise as run_advise
    from cnnlab.config import ConfigError, TrackingConfig
    from cnnlab.tracking import open_store, resolve_uri, shown

    uri = resolve_uri(TrackingConfig(runs_dir=runs_dir), tracking_uri)
    store = open_store(uri)  # within seconds: exit 2 (no store), 5 (no answer), 7 (refused)
    names = list(experiments) if experiments is not None else None
    if study_dir is not None:
        folder = Path(study_dir)
        steps = [f"{folder.resolve().name}/{p.stem}" for p in sorted(folder.glob("*.toml"))]
        names = [n for n in steps if store.find_experiment(n) is not None]
        if not names:
            raise ConfigError(f"{folder}: no step of this study has run in {shown(uri)}")
    return run_advise(uri, names, None if out is None else Path(out))


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


def _override_items(overrides: Overrides) -> list[str]:
    if isinstance(overrides, Mapping):
        return [override_text(k, v) for k, v in overrides.items()]
    if isinstance(overrides, str):
        raise ConfigError(f"overrides: expected a list of 'section.key=value', got {overrides!r}")
    return list(overrides)


def _frame(rows: list[dict[str, Any]]):
    import pandas as pd

    return pd.DataFrame(rows)


def _trials_frame(records):
    keys = sorted({k for r in records for k in r.params})
    rows = [
        {
            "number": r.number,
            "state": r.status,
            "value": r.value,
            "epochs": r.epochs,
            "seconds": r.seconds,
            "run_id": r.run_id,
            "reason": r.reason,
            **{k: r.params.get(k) for k in keys},
        }
        for r in sorted(records, key=lambda r: r.number)
    ]
    columns = ["number", "state", "value", "epochs", "seconds", "run_id", "reason", *keys]
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def _bar(total: int | None, unit: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit.rstrip("s"), desc=unit)


def _artifact_uri(uri: str | None, run_id: str | None) -> str | None:
    if not uri or not run_id:
        return None
    from cnnlab.tracking import Store

    return Store(uri).get_run(run_id).info.artifact_uri


def _rebuilt(store, run_id: str) -> tuple[Config, Any]:
    """The logged model, laid out as it trained (channels_last, the fused first block)."""
    import torch

    from cnnlab.runner import logged_model
    from cnnlab.training._fast import Runtime

    cfg, model = logged_model(store, run_id)
    Runtime.from_config(cfg.train, torch.device("cpu"), model).prepare(model)
    return cfg, model.eval()


def _history(store, run_id: str, metrics: dict[str, float]) -> list[dict[str, Any]]:
    keys = ("train_loss", "val_loss", "val_accuracy", "lr", "images_seen", "epoch_seconds")
    by_epoch: dict[int, dict[str, Any]] = {}
    for key in keys:
        if key in metrics:
            for step, value in store.metric_history(run_id, key):
                by_epoch.setdefault(step, {"epoch": step})[key] = value
    return [by_epoch[e] for e in sorted(by_epoch)]
