"""One Optuna study in a shared storage, worked on by any number of `cnnlab tune` processes.

    storage = open_storage("postgresql://cnnlab@db/cnnlab", heartbeat=10)
    shared = SharedStudy(space, cfg.search, storage, layout, epochs=3)
    resumed = shared.join(parent_args)          # one parent run for every worker
    timed_out = shared.run(objective, on_trial)  # until N trials in all have an outcome
    shared.records()

The workers agree through the storage's own atomic steps, with no coordinator:
- one parent: creating the study is the election (a storage refuses a second study of one name);
  the winner made its parent run first and stores its id in the study's user attributes, a
  loser deletes its own. A study left without one (its creator died in between) is adopted.
- exactly N: a worker starts a trial only while fewer than N are finished or running; a trial
  asked in a race, with N counted trials of lower number, is surplus: told FAIL, never trained.
- no configuration twice: every trial stores its sample; one whose sample equals that of another
  running or finished trial is told FAIL (of two such trials the later check sees the other).
- dead workers: on PostgreSQL or SQLite by Optuna's heartbeats (failed after 3x search.heartbeat
  seconds of silence), in a journal file by process id (one machine). Whoever notices ends the
  trial's RUNNING child run KILLED; the trial's configuration may be proposed again.
Proposals in a shared study are not reproducible: each worker's sampler has its own seed.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.config import ConfigError, SearchConfig
from cnnlab.search._layout import SearchLayout
from cnnlab.search._optuna import (
    RECORD_ATTR,
    make_pruner,
    optuna_distributions,
    run_trial,
    sampled_params,
)
from cnnlab.search._records import TrialRecord
from cnnlab.search._space import Space
from cnnlab.search._workers import WORKER_ATTR, dead, worker
from cnnlab.tracking import shown

SEARCH_ATTR, PARENT_ATTR = "cnnlab.search_id", "cnnlab.parent_run_id"  # the study's
PARAMS_ATTR = "cnnlab.params"  # every trial's sample, as config values
SKIPPED_ATTR = "cnnlab.skipped"  # "surplus" or "duplicate": told FAIL, never trained
SCHEMES = ("postgresql://", "postgresql+", "sqlite:///", "journal:///")
_POLL = 1.0  # seconds between looks at the study while other workers' trials run
_ADOPT_AFTER = 30.0  # seconds a joined study may lack its parent run before it is adopted
_SCHEMA_TRIES = 5  # openings of an RDB storage while other workers create its tables
_MAX_DUPLICATES = 25  # proposals in a row already tried before the space counts as used up


class StorageUnavailable(Exception):
    """The Optuna storage cannot be opened or used; the message is one line."""


def open_storage(url: str, heartbeat: int):
    """An Optuna storage for url: RDB with heartbeats, or a journal file; fails in seconds.

    A PostgreSQL URL may leave out the password (postgresql://cnnlab@db/cnnlab): libpq then
    reads it from PGPASSWORD, ~/.pgpass (or PGPASSFILE) or a service file, off the command line.
    """
    try:
        if url.startswith("journal:///"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            path = Path(url.removeprefix("journal://"))
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        return _rdb_storage(url, heartbeat)
    except Exception as exc:  # re-raised as one line: drivers and Optuna raise many kinds
        first = shown((str(exc).strip().splitlines() or [type(exc).__name__])[0][:300])
        raise StorageUnavailable(
            f"search.storage: cannot use {shown(url)}: {first}{_password_hint(url, first)}"
        ) from None


def _rdb_storage(url: str, heartbeat: int):
    """RDBStorage creates its tables on first use. Workers started at the same moment on an
    empty database race through that: the losers get a duplicate-key or already-exists error
    and, tried again, find the tables the winner made."""
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    connect = {"connect_args": {"connect_timeout": 5}} if url.startswith("postgresql") else {}
    for attempt in range(_SCHEMA_TRIES):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, connect, heartbeat_interval=heartbeat, grace_period=3 * heartbeat
                )
        except (IntegrityError, ProgrammingError) as exc:
            raced = "duplicate key" in str(exc) or "already exists" in str(exc)
            if not raced or attempt == _SCHEMA_TRIES - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _password(url: str) -> str | None:
    if url.startswith("journal:"):
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password or None
    except (ArgumentError, ValueError):  # not a database URL: it holds no password
        return None


def _password_hint(url: str, message: str) -> str:
    """Where libpq looked for a password that was missing or wrong, when the URL has none."""
    if not url.startswith("postgresql") or _password(url) or "password" not in message:
        return ""
    return " (libpq reads the password from PGPASSWORD, ~/.pgpass or PGPASSFILE, or a service file)"


class SharedStudy:
    def __init__(self, space: Space, cfg: SearchConfig, storage, layout: SearchLayout, epochs):
        import optuna
        from optuna.samplers import RandomSampler, TPESampler

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # cnnlab prints its own lines
        self.space, self.cfg, self.storage, self.layout = space, cfg, storage, layout
        self.distributions = optuna_distributions(space)
        self.direction = "maximize" if cfg.objective == "val_accuracy" else "minimize"
        seed = int(
            np.random.SeedSequence([cfg.seed, os.getpid(), time.time_ns()]).generate_state(1)[0]
        )
        if cfg.algo == "random":
            self.sampler = RandomSampler(seed=seed)
        else:  # constant liar: running trials count, so workers spread out
            self.sampler = TPESampler(
                seed=seed, n_startup_trials=cfg.startup_trials, constant_liar=True
            )
        self.pruner = make_pruner(cfg, epochs)
        self.study = None
        self._swept: set[int] = set()

    # ------------------------------------------------------------ joining

    def join(self, parent_args: tuple) -> bool:
        """Finds or creates the study and its parent run; True when this worker joined."""
        import optuna

        self.study = self._load()
        if self.study is None:
            mine = self.layout.create_parent(*parent_args)
            try:
                self.study = optuna.create_study(
                    storage=self.storage,
                    study_name=self.cfg.study,
                    direction=self.direction,
                    sampler=self.sampler,
                    pruner=self.pruner,
                )
            except optuna.exceptions.DuplicatedStudyError:
                self.layout.discard_parent(mine)
                self.study = self._load()
            else:
                self.study.set_user_attr(SEARCH_ATTR, self.layout.search_id)
                self.study.set_user_attr(PARENT_ATTR, mine)
                self.layout.parent_id = mine
                return False
        self.layout.parent_id = self._wait_for_parent(parent_args)
        return True

    def _load(self):
        import optuna

        try:
            return optuna.load_study(
                study_name=self.cfg.study,
                storage=self.storage,
                sampler=self.sampler,
                pruner=self.pruner,
            )
        except KeyError:
            return None

    def _wait_for_parent(self, parent_args: tuple) -> str:
        deadline = time.monotonic() + _ADOPT_AFTER
        while True:
            attrs = self.study.user_attrs
            found = attrs.get(SEARCH_ATTR)
            if found and found != self.layout.search_id:
                raise ConfigError(
                    f"search.study: study {self.cfg.study!r} holds another search (id {found}; "
                    f"this config's is {self.layout.search_id}): start every worker with the "
                    "same config, or name another study"
                )
            if found and PARENT_ATTR in attrs:
                return attrs[PARENT_ATTR]
            if time.monotonic() > deadline:  # its creator died between study and parent
                parent = self.layout.find_parent() or self.layout.create_parent(*parent_args)
                self.study.set_user_attr(SEARCH_ATTR, self.layout.search_id)
                self.study.set_user_attr(PARENT_ATTR, parent)
                return parent
            time.sleep(0.5)

    # ------------------------------------------------------------ working

    def run(self, objective, on_trial=None) -> bool:
        """Trials until N in the study have an outcome; True when search.timeout stopped it."""
        started, duplicates = time.monotonic(), 0
        while True:
            trials = self.trials()
            done = sum(RECORD_ATTR in t.user_attrs for t in trials)
            if done >= self.cfg.trials:
                return False
            if self.cfg.timeout and time.monotonic() - started >= self.cfg.timeout:
                return True
            if done + len(self._running(trials)) >= self.cfg.trials:
                time.sleep(_POLL)  # the last trials run elsewhere; take over if a worker dies
                continue
            outcome = self._one(objective)
            duplicates = duplicates + 1 if outcome == "duplicate" else 0
            if duplicates >= _MAX_DUPLICATES:
                raise ConfigError(
                    f"search.space: {duplicates} proposals in a row were tried already; it may "
                    f"hold fewer than search.trials = {self.cfg.trials} configurations"
                )
            if isinstance(outcome, TrialRecord) and on_trial:
                on_trial(outcome)

    def records(self) -> list[TrialRecord]:
        found = [t.user_attrs[RECORD_ATTR] for t in self.trials() if RECORD_ATTR in t.user_attrs]
        return sorted((TrialRecord.from_dict(r) for r in found), key=lambda r: r.number)

    def trials(self) -> list:
        """The study's trials, after failing those of dead workers and ending their runs."""
        from optuna.trial import TrialState

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fail_stale_trials is experimental
            from optuna.storages import fail_stale_trials

            fail_stale_trials(self.study)
        trials = self.study.get_trials(deepcopy=False)
        for t in trials:
            if t.state == TrialState.RUNNING and dead(t):
                with contextlib.suppress(Exception):  # another worker was quicker
                    self.study.tell(t.number, state=TrialState.FAIL)
        trials = self.study.get_trials(deepcopy=False)
        lost = {
            t.number
            for t in trials
            if t.state == TrialState.FAIL and not {RECORD_ATTR, SKIPPED_ATTR} & set(t.user_attrs)
        }
        if lost - self._swept:
            self.layout.close_lost(lost - self._swept)
            self._swept |= lost
        return trials

    def others_running(self) -> bool:
        return bool(self._running(self.trials()))

    def _one(self, objective) -> TrialRecord | str:
        """Asks a trial; trains it, or tells it FAIL as "surplus" or "duplicate"."""
        import optuna
        from optuna.trial import TrialState

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "heartbeat is supposed to be used with optimize"
            trial = self.study.ask(self.distributions)
        with self._heartbeat(trial._trial_id):
            params = sampled_params(self.space, trial)
            trial.set_user_attr(WORKER_ATTR, worker())
            trial.set_user_attr(PARAMS_ATTR, params)
            skip = self._verdict(trial.number, params)
            if skip:
                trial.set_user_attr(SKIPPED_ATTR, skip)
                self.study.tell(trial, state=TrialState.FAIL)
                return skip
            self.layout.reopen_parent()  # a worker that left alone may have ended it
            try:
                return run_trial(self.study, trial, trial.number, params, objective, self.cfg)
            except optuna.exceptions.UpdateFinishedTrialError:
                # Failed as stale while it trained (this worker went silent for too long).
                run_id = self.layout.find_child(trial.number)
                if run_id:
                    self.layout.mark_lost(run_id)
                return "stale"

    def _verdict(self, number: int, params: dict[str, Any]) -> str:
        trials = self.study.get_trials(deepcopy=False)
        running = {t.number for t in self._running(trials)}
        counted = [t for t in trials if RECORD_ATTR in t.user_attrs or t.number in running]
        counted = [t for t in counted if t.number != number]
        if sum(t.number < number for t in counted) >= self.cfg.trials:
            return "surplus"
        key = _key(params)
        if any(_key(t.user_attrs.get(PARAMS_ATTR)) == key for t in counted):
            return "duplicate"
        return ""

    @staticmethod
    def _running(trials: list) -> list:
        from optuna.trial import TrialState

        return [
            t for t in trials if t.state == TrialState.RUNNING and SKIPPED_ATTR not in t.user_attrs
        ]

    @contextlib.contextmanager
    def _heartbeat(self, trial_id: int):
        """Optuna's heartbeat for an RDB storage, the first one at once; nothing for a journal."""
        beat = getattr(self.storage, "record_heartbeat", None)
        if beat is None:
            yield
            return
        beat(trial_id)
        stop = threading.Event()

        def loop():
            while not stop.wait(self.cfg.heartbeat):
                with contextlib.suppress(Exception):  # a missed beat is retried next time
                    beat(trial_id)

        thread = threading.Thread(target=loop, name="cnnlab-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def _key(params: dict[str, Any] | None) -> str | None:
    return None if params is None else json.dumps(params, sort_keys=True)
