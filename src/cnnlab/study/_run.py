"""Run a study folder step by step: each variant once per seed, resumable, with an estimate of
the time left; everything the report needs is stored in MLflow with the runs.

Steps run in file-name order, each in its own MLflow experiment `<study>/<file stem>`. A step
whose runs all finished is skipped; a half-done step runs only the (variant, seed) pairs that
have no FINISHED run, continuing a run that was cut short from its checkpoint when it has one.

    results, uri = run_study(Path("experiments"), quick=True)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.config import Config
from cnnlab.study._decide import DEFAULT_MAX_SEEDS
from cnnlab.study._jobs import run_jobs
from cnnlab.study._plan import Job, Plan, cut_runs, plan_step, runs_of
from cnnlab.study._record import describe
from cnnlab.study._rounds import add_rounds
from cnnlab.study._steps import Step, load_steps
from cnnlab.tracking import Store
from cnnlab.tracking.tags import SEED_TAG, STEP_COMPLETE_TAG, STEP_HASH_TAG, VARIANT_TAG


@dataclass
class StepResult:
    step: str
    experiment: str
    skipped: bool
    runs: int
    added_runs: int = 0  # runs of seeds added by --until-decided while a hypothesis was open


class Progress:
    """Counts finished runs and images; the time left assumes the rate of the work so far."""

    def __init__(self, jobs: list[Job], on_run: Callable[[int, int], None] | None = None):
        self.runs_total = sum(runs_of(j) for j in jobs)
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
    ray: str | None = None,
) -> tuple[list[StepResult], str]:
    """Runs every step in order; returns what happened per step and the tracking URI.

    `seeds` (a count or a list) replaces every train step's own `seeds`. `echo` gets a line
    per step and per run; `on_run(done, planned)` is called after each run. `jobs` train
    runs go at once, each in a worker process with its share of the cores (train steps only:
    a tune step's trials run as its [search] says); None: one per 4 cores. `until_decided`:
    then adds rounds of seeds to the variants that an open hypothesis compares, until each is
    decided or has `max_seeds` seeds per arm (see study._decide for the stopping rule).
    `ray`: a Ray cluster's address (or "local") whose nodes run the train runs and a tune
    step's trials instead (cnnlab.cluster).
    """
    from cnnlab.tracking import resolve_uri

    steps = load_steps(folder, only)
    prefix = f"{folder.resolve().name}{'-quick' if quick else ''}"
    first = steps[0].config(steps[0].variants[0], quick)
    uri = resolve_uri(first.tracking, tracking_uri)
    with _cluster(ray, uri) as cluster:  # joined before any store, run or data exists
        context = _Context(prefix, quick, seeds, uri, Store(uri), data_dir, echo, on_run, jobs)
        context.cluster = cluster
        results = context.run(steps, tune or _tune)
        if until_decided:
            if quick:
                echo("until-decided: a quick study's verdicts are not judged, so no seeds added")
            else:
                cap = DEFAULT_MAX_SEEDS if max_seeds is None else max_seeds
                add_rounds(context, load_steps(folder, None), steps, cap, results, _tune)
    return results, uri


@contextlib.contextmanager
def _cluster(address: str | None, uri: str):
    if address is None:
        yield None
        return
    from cnnlab.cluster import connect

    with connect(address, uri) as cluster:
        yield cluster


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
    cluster: Any = None  # cnnlab.cluster.Cluster: runs and trials go to its nodes

    def run(self, steps: list[Step], tune) -> list[StepResult]:
        """One pass: each step's runs still to make, with one estimate of the time left."""
        plans = {
            s.name: plan_step(s, self.prefix, self.quick, self.seeds, self.store) for s in steps
        }
        progress = Progress([j for plan in plans.values() for j in plan.jobs], self.on_run)
        trains = sum(len(p.jobs) for s, p in zip(steps, plans.values()) if s.kind == "train")
        jobs = self.jobs
        if jobs is None:
            from cnnlab._pool import default_jobs

            jobs = default_jobs()
        results = []
        with _pool(min(jobs, trains), self.cluster) as pool:
            for step in steps:
                run = _Runner(step, self, progress, pool)
                results.append(run.step(plans[step.name], tune))
        return results


@contextlib.contextmanager
def _pool(jobs: int, cluster):
    """Worker processes for the train runs when more than one runs at once, Ray tasks on a
    cluster's nodes when one is given; else None."""
    if cluster is not None:
        from cnnlab.cluster import RayPool
        from cnnlab.study._jobs import run_resources

        yield RayPool(cluster, run_resources(cluster))
        return
    if jobs <= 1:
        yield None
        return
    from cnnlab._pool import WorkerPool

    with WorkerPool(jobs) as pool:
        yield pool


class _Runner:
    def __init__(self, step: Step, context: _Context, progress: Progress, pool):
        self.s, self.prefix, self.quick, self.uri = step, context.prefix, context.quick, context.uri
        self.store, self.data_dir = context.store, context.data_dir
        self.progress, self.echo = progress, context.echo
        self.pool = pool  # worker processes for the train runs, or None: runs here, in order
        self.cluster = context.cluster
        self.experiment = f"{self.prefix}/{step.name}"

    def step(self, plan: Plan, tune) -> StepResult:
        self.digest = plan.digest
        exp_id = self.store.ensure_experiment(self.experiment)
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
        self.store.set_experiment_tag(exp_id, STEP_COMPLETE_TAG, plan.complete)
        return StepResult(self.s.name, self.experiment, False, count)

    def _search(self, job: Job, tune) -> int:
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

        kwargs = {}
        if self.cluster is not None:
            from cnnlab.search import spreads_over

            if spreads_over(cfg, self.cluster.nodes):
                kwargs["ray"] = self.cluster
            else:  # one trial at a time, here: what the step does without a cluster
                self.echo("  its trials run here (Hyperopt, or no storage all nodes reach)")
        tune(cfg, tracking_uri=self.uri, data_dir=self.data_dir, on_trial=on_trial, **kwargs)
        return cfg.search.trials

    def _train(self, jobs: list[Job]) -> int:
        items = []
        cut = cut_runs(self.store, self.experiment, self.digest)
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


def _tune(cfg: Config, *, tracking_uri: str, data_dir: str | None, on_trial, ray=None) -> None:
    from cnnlab.export import register_best
    from cnnlab.search import run_search

    result = run_search(
        cfg, tracking_uri=tracking_uri, data_dir=data_dir, on_trial=on_trial, ray=ray
    )
    register_best(result, cfg.search.register)  # a step's [search] register = "name"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
