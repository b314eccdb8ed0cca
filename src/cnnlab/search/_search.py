"""A whole search: checks (no run) -> data (no run) -> parent run -> trials -> best config.

    result = run_search(load_config("configs/study-search.toml"))
    result.best.params, result.best_config_path, result.parent_run_id

Resuming is rerunning: the search id (experiment + config + search settings, but not the trial
count or timeout) finds the engine state and the parent run again, and the search goes on
until `search.trials` trials in total have an outcome.

With `search.storage`, this process is one worker of a study shared with others (see _shared):
the same command on any number of processes or machines works through one search together.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cnnlab.config import Config, ConfigError, SearchConfig, to_dict, to_toml
from cnnlab.data import load_splits
from cnnlab.search._check import require_some_valid
from cnnlab.search._engines import make_engine
from cnnlab.search._layout import SearchLayout
from cnnlab.search._objective import Objective, trial_config
from cnnlab.search._records import TrialRecord, best_of, counts, counts_as_trial
from cnnlab.search._shared import SCHEMES, SharedStudy, open_storage
from cnnlab.search._space import Space, parse_space, space_to_dict
from cnnlab.tracking import resolve_uri, shown, store_file
from cnnlab.tracking.tags import SEARCH_STATE_TAG, TRIALS_REQUESTED_TAG

# Settings that may change between a search and its resumption without making it another one.
_NOT_IDENTITY = ("trials", "timeout", "state_dir", "storage", "heartbeat", "register")


@dataclass
class SearchResult:
    search_id: str
    parent_run_id: str
    resumed: bool
    engine: str
    objective: str
    maximize: bool
    requested: int  # search.trials
    records: list[TrialRecord]  # every trial with an outcome, this process's and earlier ones
    best: TrialRecord | None
    best_config_path: Path | None
    state_path: Path
    tracking_uri: str
    timed_out: bool  # search.timeout stopped it before `requested` trials
    storage: str = ""  # a shared study's storage URL, password hidden; empty = local
    study: str = ""  # the shared study's name

    @property
    def counts(self) -> dict[str, int]:
        return counts(self.records)

    def to_dict(self) -> dict:
        """The --json line: ids, best params and value, counts."""
        n = self.counts
        return {
            "parent_run_id": self.parent_run_id,
            "search_id": self.search_id,
            "resumed": self.resumed,
            "engine": self.engine,
            "objective": self.objective,
            "best_value": self.best.value if self.best else None,
            "best_params": self.best.params if self.best else None,
            "best_run_id": self.best.run_id if self.best else None,
            "best_config": str(self.best_config_path) if self.best_config_path else None,
            "trials": len(self.records),
            "requested": self.requested,
            "succeeded": n["ok"],
            "failed": n["failed"],
            "pruned": n["pruned"],
            "timed_out": self.timed_out,
            "state": self.storage or str(self.state_path),
            "study": self.study or None,
            "tracking_uri": self.tracking_uri,
        }


def prepare(cfg: Config) -> Space:
    """Every check that needs neither data nor MLflow; ConfigError means bad input."""
    if cfg.data.val_fraction <= 0:
        raise ConfigError(
            "data.val_fraction: a search selects on the validation split; expected > 0, got 0"
        )
    if cfg.search.pruner != "none" and cfg.search.engine != "optuna":
        raise ConfigError(
            f'search.pruner: {cfg.search.pruner!r} needs search.engine = "optuna"; '
            "hyperopt cannot prune"
        )
    _check_storage(cfg.search)
    space = parse_space(cfg.search.space, to_dict(cfg))
    require_some_valid(cfg, space)
    return space


def search_id(cfg: Config) -> str:
    tables = to_dict(cfg)
    search = {k: v for k, v in tables.pop("search").items() if k not in _NOT_IDENTITY}
    if not search.get("study"):  # local searches: ids from before shared studies still hold
        search.pop("study", None)
    tables["tracking"] = {"experiment": cfg.tracking.experiment}
    text = json.dumps({"config": tables, "search": search}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def state_path(cfg: Config, uri: str, sid: str) -> Path:
    """Beside the MLflow store: <folder of mlflow.db>/searches/<id>.<engine>.*"""
    if cfg.search.state_dir:
        folder = Path(cfg.search.state_dir)
    elif store_file(uri) is not None:
        folder = store_file(uri).parent / "searches"
    else:  # a tracking server: keep the state where an embedded store would be
        folder = Path(cfg.tracking.runs_dir) / "searches"
    suffix = "hyperopt.pkl" if cfg.search.engine == "hyperopt" else "optuna.db"
    return folder.resolve() / f"{sid}.{suffix}"


def run_one(
    cfg: Config,
    *,
    tracking_uri: str | None = None,
    data_dir: str | None = None,
    on_trial: Callable[[TrialRecord], None] | None = None,
) -> SearchResult:
    """Runs (or resumes) cfg's search in this process, one trial at a time, or as one worker
    of its shared study; KeyboardInterrupt ends the parent KILLED and re-raises."""
    space = prepare(cfg)
    if cfg.search.storage:
        return _run_shared(cfg, space, tracking_uri, data_dir, on_trial)
    splits = load_splits(cfg, data_dir)  # DataError here: still no run
    uri = resolve_uri(cfg.tracking, tracking_uri)
    sid = search_id(cfg)
    path = state_path(cfg, uri, sid)
    engine = make_engine(space, cfg.search, path, cfg.train.epochs)
    records = engine.records()
    layout = SearchLayout(uri, cfg.tracking.experiment, sid)
    try:
        resumed = layout.open_parent(*_parent_run(cfg, space, sid, path))
        objective = Objective(cfg, layout, splits, uri, data_dir)
        layout.close_stale(done=len(records))
        timed_out = _loop(cfg.search, engine, objective, records, on_trial)
        best_path = _write_best(cfg, records, path)
        layout.finish(records, cfg.search.objective, engine_maximizes(cfg.search))
    except KeyboardInterrupt:
        # The runner ends its child KILLED, except when the signal lands while it opens one.
        layout.close_stale(done=len(records))
        layout.end_parent("KILLED", "interrupted")
        raise
    except BaseException as exc:
        layout.end_parent("FAILED", f"{type(exc).__name__}: {exc}")
        raise
    return _result(cfg, sid, layout.parent_id, resumed, records, best_path, path, uri, timed_out)


def _run_shared(cfg: Config, space: Space, tracking_uri, data_dir, on_trial) -> SearchResult:
    """One worker of a shared study; leaving early ends the parent only if no trial runs."""
    study = cfg.search.study or f"cnnlab-{search_id(cfg)}"
    s = dataclasses.replace(cfg.search, study=study)
    storage = open_storage(s.storage, s.heartbeat)  # StorageUnavailable: no run
    # Runs log their config; the password stays out of MLflow.
    cfg = dataclasses.replace(cfg, search=dataclasses.replace(s, storage=shown(s.storage)))
    splits = load_splits(cfg, data_dir)
    uri = resolve_uri(cfg.tracking, tracking_uri)
    sid = search_id(cfg)
    path = state_path(cfg, uri, sid)
    layout = SearchLayout(uri, cfg.tracking.experiment, sid)
    shared = SharedStudy(space, cfg.search, storage, layout, cfg.train.epochs)
    maximize = engine_maximizes(cfg.search)
    try:
        resumed = shared.join(_parent_run(cfg, space, sid, path))
        timed_out = shared.run(Objective(cfg, layout, splits, uri, data_dir), on_trial)
        records = shared.records()
        best_path = _write_best(cfg, records, path)
        if not timed_out or not shared.others_running():
            layout.finish(records, cfg.search.objective, maximize)
    except KeyboardInterrupt:
        if shared.study is not None and not shared.others_running():
            layout.end_parent("KILLED", "interrupted")
        raise
    except BaseException as exc:
        if shared.study is not None and not shared.others_running():
            layout.end_parent("FAILED", f"{type(exc).__name__}: {exc}")
        raise
    args = (sid, layout.parent_id, resumed, records, best_path, path, uri, timed_out)
    return _result(cfg, *args, s.storage, study)


def _result(cfg: Config, sid, parent_id, resumed, records, best, path, uri, timed_out, *shared):
    """The SearchResult of either ending, local or one worker's of a shared study."""
    s, maximize = cfg.search, engine_maximizes(cfg.search)
    return SearchResult(
        sid,
        parent_id,
        resumed,
        s.engine,
        s.objective,
        maximize,
        s.trials,
        records,
        best_of(records, maximize),
        best,
        path,
        uri,
        timed_out,
        *shared,
    )


def _check_storage(s: SearchConfig) -> None:
    if s.storage and s.engine != "optuna":
        raise ConfigError(
            f'search.storage: a shared study needs search.engine = "optuna", got {s.engine!r}'
        )
    if s.storage and not s.storage.startswith(SCHEMES):
        raise ConfigError(
            "search.storage: expected postgresql://..., sqlite:///... or journal:///path, "
            f"got {shown(s.storage)!r}"
        )
    if s.study and not s.storage:
        raise ConfigError("search.study: names a shared study; it needs search.storage")


def engine_maximizes(search: SearchConfig) -> bool:
    return search.objective == "val_accuracy"


_DRAWS_PER_TRIAL = 50  # count_invalid = false: most samples drawn per counted trial


def _counted(search: SearchConfig, records: list[TrialRecord]) -> int:
    return sum(counts_as_trial(r, search.count_invalid) for r in records)


def _loop(search: SearchConfig, engine, objective, records: list[TrialRecord], on_trial) -> bool:
    """Trials until `search.trials` have an outcome; True when the timeout stopped it first."""
    started = time.monotonic()
    # Without count_invalid, impossible samples cost milliseconds and no trial; the cap keeps a
    # space that is almost all impossible from drawing forever.
    cap = search.trials * (1 if search.count_invalid else _DRAWS_PER_TRIAL)
    while _counted(search, records) < search.trials and len(records) < cap:
        if search.timeout and time.monotonic() - started >= search.timeout:
            return True
        record = engine.run_one(objective)
        records.append(record)
        if on_trial:
            on_trial(record)
    return False


def _parent_run(cfg: Config, space: Space, sid: str, path: Path):
    s = cfg.search
    params = {
        "search.engine": s.engine,
        "search.algo": s.algo,
        "search.seed": str(s.seed),
        "search.objective": s.objective,
        "search.startup_trials": str(s.startup_trials),
        "search.pruner": s.pruner,
        "search.trials": str(s.trials),
        "search.space": json.dumps(space_to_dict(space)),
    }
    state = f"{shown(s.storage)} study {s.study}" if s.storage else str(path)
    tags = {TRIALS_REQUESTED_TAG: str(s.trials), SEARCH_STATE_TAG: state}
    name = cfg.tracking.run_name or f"search-{s.name or sid[:8]}"
    return name, params, tags, {"config.toml": to_toml(cfg)}


def _write_best(cfg: Config, records: list[TrialRecord], path: Path) -> Path | None:
    """The best trial's full config, without [search]: `cnnlab train` retrains it exactly."""
    best = best_of(records, engine_maximizes(cfg.search))
    if best is None:
        return None
    trial = dataclasses.replace(trial_config(cfg, best.params), search=SearchConfig())
    out = path.with_name(f"{path.name.split('.')[0]}-best.toml")
    header = (
        f"# Best trial {best.number} of search {path.name.split('.')[0]} "
        f"({cfg.search.objective} {best.value:.6g}), MLflow run {best.run_id}.\n"
        f"# cnnlab train {out}\n\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)  # a shared study keeps no local state
    out.write_text(header + to_toml(trial), encoding="utf-8")
    return out
