"""Run a study folder step by step: each variant once per seed, resumable, with an estimate of
the time left; everything the report needs is stored in MLflow with the runs.

Steps run in file-name order, each in its own MLflow experiment `<study>/<file stem>`. A step
whose runs all finished is skipped; a half-done step runs only the (variant, seed) pairs that
have no FINISHED run, continuing a run that was cut short from its checkpoint when it has one.

    results, uri = run_study(Path("experiments"), quick=True)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.config import Config
from cnnlab.data import InfoCache
from cnnlab.reports._collect import ADDED_TAG, LOOKS_TAG, SEED_TAG, STEP_HASH_TAG, VARIANT_TAG
from cnnlab.study._decide import (
    DEFAULT_MAX_SEEDS,
    Request,
    Sequential,
    added_entry,
    until_decided,
)
from cnnlab.study._jobs import run_jobs
from cnnlab.study._record import describe
from cnnlab.study._steps import Step, Variant, load_steps, step_hash
from cnnlab.tracking import Store

# Each dataset's size once per process, for the estimate of the time left.
_INFOS = InfoCache()


@dataclass
class StepResult:
    step: str
    experiment: str
    skipped: bool
    runs: int
    added_runs: int = 0  # runs of seeds added by --until-decided while a hypothesis was open


@dataclass
class _Job:
    step: Step
    variant: Variant
    seed: int | None  # None: a tune step's search
    images: int  # planned training images, for the estimate of the time left
    name: str  # the run's name: the variant's, with its seed when it has several


class Progress:
    """Counts finished runs and images; the time left assumes the rate of the work so far."""

    def __init__(self, jobs: list[_Job], on_run: Callable[[int, int], None] | None = None):
        self.runs_total = sum(_runs_of(j) for j in jobs)
        self.images_total = sum(j.images for j in jobs)
        self.runs = self.images = 0
        self.started = time.perf_counter()
        self.on_run = on_run  # (runs done, runs planned), after each run: a progress bar

    def advance(self, images: int, runs: int = 1, dropped: int = 0) -> str:
        """`images` trained by `runs` finished runs; `dropped`: planned images that will not be
        trained after all (a trial refused or stopped early), so the estimate stops waiting."""
        self.runs += runs
        self.images += images
        self.images_total -= dropped
        if self.on_run is not None and runs:
            self.on_run(self.runs, self.runs_total)
        elapsed = time.perf_counter() - self.started
        text = f"run {self.runs}/{self.runs_total}, {_clock(elapsed)} elapsed"
        if 0 < self.images < self.images_total:
            left = elapsed / self.images * (self.images_total - self.images)
            text += f", about {_clock(left)} left"
        return text


def run_study(
    folder: Path,
    *,
    quick: bool = False,
    only: str | None = None,
    seeds: int | list[int] | None = None,
    tracking_uri: str | None = None,
    data_dir: str | None = None,
    tune: Callable[..., Any] | None = None,
    echo: Callable[[str], None] = print,
    on_run: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
    until_decided: bool = False,
    max_seeds: int | None = None,
) -> tuple[list[StepResult], str]:
    """Runs every step in order; returns what happened per step and the tracking URI.

    `seeds` (a count or a list) replaces every train step's own `seeds`. `echo` gets a line
    per step and per run; `on_run(done, planned)` is called after each run. `jobs` train
    runs go at once, each in a worker process with its share of the cores (train steps only:
    a tune step's trials run as its [search] says); None: one per 4 cores. `until_decided`:
    then adds rounds of seeds to the variants that an open hypothesis compares, until each is
    decided or has `max_seeds` seeds per arm (see study._decide for the stopping rule).
    """
    from cnnlab.tracking import resolve_uri

    steps = load_steps(folder, only)
    prefix = f"{folder.resolve().name}{'-quick' if quick else ''}"
    first = steps[0].config(steps[0].variants[0], quick)
    uri = resolve_uri(first.tracking, tracking_uri)
    context = _Context(prefix, quick, seeds, uri, Store(uri), data_dir, echo, on_run, jobs)
    results = context.run(steps, tune or _tune)
    if until_decided:
        if quick:
            echo("until-decided: a quick study's verdicts are not judged, so no seeds are added")
        else:
            cap = DEFAULT_MAX_SEEDS if max_seeds is None else max_seeds
            _rounds(context, load_steps(folder, None), steps, cap, results)
    return results, uri


@dataclass
class _Context:
    """What every pass over the steps shares: the study's prefix and options, and its store."""

    prefix: str
    quick: bool
    seeds: int | list[int] | None
    uri: str
    store: Store
    data_dir: str | None
    echo: Callable[[str], None]
    on_run: Callable[[int, int], None] | None
    jobs: int | None

    def run(self, steps: list[Step], tune) -> list[StepResult]:
        """One pass: each step's runs still to make, with one estimate of the time left."""
        plans = {s.name: _plan(s, self.prefix, self.quick, self.seeds, self.store) for s in steps}
        progress = Progress([j for plan in plans.values() for j in plan.jobs], self.on_run)
        trains = sum(len(p.jobs) for s, p in zip(steps, plans.values()) if s.kind == "train")
        jobs = self.jobs
        if jobs is None:
            from cnnlab._pool import default_jobs

            jobs = default_jobs()
        results = []
        with _pool(min(jobs, trains)) as pool:
            for step in steps:
                run = _Runner(step, self, progress, pool)
                results.append(run.step(plans[step.name], tune))
        return results


def _rounds(
    context: _Context, every: list[Step], judged_steps: list[Step], cap: int, results
) -> None:
    """Seeds added to the variants open hypotheses compare, round by round (study._decide)."""
    from cnnlab.reports import judge_experiments

    by_experiment = {f"{context.prefix}/{s.name}": s for s in every}
    plans = {}
    for step in judged_steps:
        if step.kind != "train" or not step.expect:
            continue
        experiment = f"{context.prefix}/{step.name}"
        start = min(len(step.seed_list(v, context.seeds)) for v in step.variants)
        plans[experiment] = _record_looks(context.store, experiment, Sequential(start, cap))
    counts = {r.experiment: r for r in results}

    def judge():
        return judge_experiments(context.uri, list(plans))

    def extend(requests: list[Request], number: int) -> int:
        touched = []
        for request in requests:
            if request.experiment not in by_experiment:
                continue  # a reference outside this study folder: nothing here can run it
            exp_id = context.store.experiment_id(request.experiment)
            entries = json.loads(context.store.experiment(exp_id).tags.get(ADDED_TAG, "[]"))
            entries.append(added_entry(request, number))
            context.store.set_experiment_tag(exp_id, ADDED_TAG, json.dumps(entries))
            step = by_experiment[request.experiment]
            if step not in touched:
                touched.append(step)
        made = 0
        for r in context.run(sorted(touched, key=every.index), _tune):
            made += r.runs
            if r.experiment in counts:
                counts[r.experiment].added_runs += r.runs
        return made

    until_decided(judge, extend, plans, _next_round(context.store, by_experiment), context.echo)


def _record_looks(store: Store, experiment: str, plan: Sequential) -> Sequential:
    """The step's planned looks, stored for the report; a plan recorded earlier with more
    looks stands (looks already taken cannot be taken back)."""
    exp_id = store.experiment_id(experiment)
    before = json.loads(store.experiment(exp_id).tags.get(LOOKS_TAG, "null"))
    if before is not None and before.get("looks", 1) >= plan.looks:
        plan = Sequential(int(before.get("round", plan.start)), int(before["max_seeds"]))
    else:
        store.set_experiment_tag(exp_id, LOOKS_TAG, plan.tag())
    return plan


def _next_round(store: Store, experiments: dict[str, Step]) -> int:
    """The round after the last one recorded in any step: an interrupted study goes on."""
    last = 1
    for name in experiments:
        exp = store.find_experiment(name)
        if exp is not None:
            for entry in json.loads(exp.tags.get(ADDED_TAG, "[]")):
                last = max(last, int(entry["round"]))
    return last + 1


@contextlib.contextmanager
def _pool(jobs: int):
    """Worker processes for the train runs when more than one runs at once; else None."""
    if jobs <= 1:
        yield None
        return
    from cnnlab._pool import WorkerPool

    with WorkerPool(jobs) as pool:
        yield pool


@dataclass
class _Plan:
    jobs: list[_Job]  # what is still to run
    digest: str  # the step's configs, hashed (its runs carry it)
    complete: str  # the step's completion mark: its configs and its seeds, hashed
    seeds: dict[str, list[int]]  # variant -> its seeds: the runs the report takes
    skip: bool = False  # the store marks the step complete as it is now


def _plan(step: Step, prefix: str, quick: bool, seeds, store: Store) -> _Plan:
    experiment = f"{prefix}/{step.name}"
    exp = store.find_experiment(experiment)
    added = _added(exp.tags if exp is not None else {}, step)
    pairs = [
        (v, s)
        for v in step.variants
        for s in dict.fromkeys(step.seed_list(v, seeds) + added.get(v.name, []))
    ]
    digest = step_hash(step, quick)
    complete = f"{digest}:{_seeds_key(pairs)}"
    by_variant = {v.name: [s for w, s in pairs if w is v] for v in step.variants}
    if exp is not None and exp.tags.get("cnnlab.step_complete") == complete:
        return _Plan([], digest, complete, by_variant, skip=True)
    if step.kind == "tune":
        cfg = step.config(step.variants[0], quick)
        images = cfg.search.trials * _images(cfg)
        job = _Job(step, step.variants[0], None, images, step.name)
        return _Plan([job], digest, complete, {})
    done = _finished(store, exp, digest)
    several = len(pairs) > len(step.variants)
    jobs = [
        _Job(
            step,
            v,
            s,
            _images(step.config(v, quick, s)),
            f"{v.name} seed={s}" if several else v.name,
        )
        for v, s in pairs
        if (v.name, s) not in done
    ]
    return _Plan(jobs, digest, complete, by_variant)


class _Runner:
    def __init__(self, step: Step, context: _Context, progress: Progress, pool):
        self.s, self.prefix, self.quick, self.uri = step, context.prefix, context.quick, context.uri
        self.store, self.data_dir = context.store, context.data_dir
        self.progress, self.echo = progress, context.echo
        self.pool = pool  # worker processes for the train runs, or None: runs here, in order
        self.experiment = f"{self.prefix}/{step.name}"

    def step(self, plan: _Plan, tune) -> StepResult:
        self.digest = plan.digest
        exp_id = self.store.experiment_id(self.experiment)
        # Described again even when complete: a hypothesis or a reference edited after the
        # runs changes what the report says of them, not the runs (the frozen record keeps
        # what was expected before, and when it changed).
        describe(
            self.store,
            exp_id,
            self.s,
            prefix=self.prefix,
            digest=self.digest,
            quick=self.quick,
            seeds=plan.seeds,
        )
        if plan.skip:
            self.echo(f"step {self.s.name}: already complete in {self.experiment!r}, skipped")
            return StepResult(self.s.name, self.experiment, True, 0)
        self.echo(f"step {self.s.name} ({self.s.kind}): {self.s.description or self.experiment}")
        count = (
            self._search(plan.jobs[0], tune) if self.s.kind == "tune" else self._train(plan.jobs)
        )
        self.store.set_experiment_tag(exp_id, "cnnlab.step_complete", plan.complete)
        return StepResult(self.s.name, self.experiment, False, count)

    def _search(self, job: _Job, tune) -> int:
        cfg = self.s.config(job.variant, self.quick)
        cfg.tracking.experiment = self.experiment
        per_trial = job.images // max(1, cfg.search.trials)

        def on_trial(record) -> None:
            from cnnlab.search import counts_as_trial, describe_record

            if counts_as_trial(record, cfg.search.count_invalid):
                trained = per_trial * min(record.epochs, cfg.train.epochs) // cfg.train.epochs
                where = self.progress.advance(trained, dropped=per_trial - trained)
            else:  # drawn again: neither a run nor any of the planned images
                where = self.progress.advance(0, runs=0)
            self.echo(f"  {describe_record(record)}  [{where}]")

        tune(cfg, tracking_uri=self.uri, data_dir=self.data_dir, on_trial=on_trial)
        return cfg.search.trials

    def _train(self, jobs: list[_Job]) -> int:
        items = []
        cut = _cut(self.store, self.experiment, self.digest)
        for job in jobs:
            cfg = self.s.config(job.variant, self.quick, job.seed)
            cfg.tracking.experiment, cfg.tracking.run_name = self.experiment, job.name
            tags = {
                STEP_HASH_TAG: self.digest,
                VARIANT_TAG: job.variant.name,
                SEED_TAG: str(job.seed),
            }
            items.append(
                (cfg, self.uri, self.data_dir, tags, cut.get((job.variant.name, job.seed)))
            )
        for index, r in run_jobs(self.pool, items):
            job = jobs[index]
            where = self.progress.advance(job.images)
            if r.failure is not None:
                self.echo(f"  {job.name}: {r.failure}; the study goes on  [{where}]")
                continue
            self.echo(
                f"  {job.name}: val_loss {r.best_val_loss:.4f}  test_loss {r.test_loss:.4f}  "
                f"test_accuracy {r.test_accuracy:.4f}  ({r.images_seen:,} images, "
                f"{r.seconds:.0f}s)  [{where}]"
            )
        return len(jobs)


def _tune(cfg: Config, *, tracking_uri: str, data_dir: str | None, on_trial) -> None:
    from cnnlab.export import register_best
    from cnnlab.search import run_search

    result = run_search(cfg, tracking_uri=tracking_uri, data_dir=data_dir, on_trial=on_trial)
    register_best(result, cfg.search.register)  # a step's [search] register = "name"


def _finished(store: Store, exp, digest: str) -> set[tuple[str, int | None]]:
    if exp is None:
        return set()
    where = f"tags.`{STEP_HASH_TAG}` = '{digest}' and attributes.status = 'FINISHED'"
    runs = store.search_runs([exp.experiment_id], where, max_results=5000)
    return {(r.data.tags.get(VARIANT_TAG), _int(r.data.tags.get(SEED_TAG))) for r in runs}


def _cut(store: Store, experiment: str, digest: str) -> dict[tuple[str, int | None], str]:
    """(variant, seed) -> the newest of its runs that a kill or an interrupt cut short (KILLED,
    or RUNNING with its process gone): the rerun goes on from its checkpoint."""
    exp = store.find_experiment(experiment)
    if exp is None:
        return {}
    where = f"tags.`{STEP_HASH_TAG}` = '{digest}'"
    runs = store.search_runs([exp.experiment_id], where, ["attributes.start_time DESC"])
    found: dict[tuple[str, int | None], str] = {}
    for r in runs:
        if r.info.status in ("KILLED", "RUNNING"):
            key = (r.data.tags.get(VARIANT_TAG), _int(r.data.tags.get(SEED_TAG)))
            found.setdefault(key, r.info.run_id)
    return found


def _added(tags: dict[str, str], step: Step) -> dict[str, list[int]]:
    """Seeds --until-decided added to the step's variants (a train step's), round by round."""
    if step.kind != "train":
        return {}
    found: dict[str, list[int]] = {}
    for entry in json.loads(tags.get(ADDED_TAG, "[]")):
        found.setdefault(entry["variant"], []).extend(int(s) for s in entry["seeds"])
    return found


def _images(cfg: Config) -> int:
    t = cfg.train
    if t.steps_per_epoch:
        return t.epochs * t.steps_per_epoch * t.batch_size
    train = int(_INFOS(cfg.data).train_images * (1 - cfg.data.val_fraction))
    return t.epochs * (min(train, cfg.data.train_limit) if cfg.data.train_limit else train)


def _runs_of(job: _Job) -> int:
    if job.seed is not None:
        return 1
    return job.step.config(job.variant, quick=False).search.trials


def _seeds_key(pairs: list[tuple[Variant, int]]) -> str:
    text = json.dumps([(v.name, s) for v, s in pairs])
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
