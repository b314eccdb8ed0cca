"""Studies and what is read from their runs: a study folder run, its report, the advice."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.api._common import _bar, _isolated
from cnnlab.api._results import ReportResult, StudyResult

if TYPE_CHECKING:
    from cnnlab.advisor import Advice


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
    ray: str | None = None,
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
        ray: a Ray cluster's address (HOST:PORT of its head) or "local": each train run and
            each trial runs as a Ray task on whichever node has room (`train.threads` CPUs,
            one when 0; a cuda run asks for a GPU), steps in order; `jobs` is then unused.
            A cluster of several nodes needs a tracking server (see cnnlab.cluster).

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
            ray=ray,
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
    from cnnlab.export import evaluated_confusion
    from cnnlab.reports import confusion_from_run, write_report
    from cnnlab.tracking import Store, resolve_uri

    uri = resolve_uri(TrackingConfig(runs_dir=runs_dir), tracking_uri)

    def confusion(run):  # as the run logged it; an older run's weights evaluated again
        return confusion_from_run(uri, run) or evaluated_confusion(Store(uri), run.run_id, data_dir)

    def next_steps(names: list[str]):
        from cnnlab.advisor import advise as run_advise

        return run_advise(uri, names, Path(out) / "next", "cnnlab report").section()

    names = list(experiments) if experiments is not None else None
    written = write_report(uri, names, Path(out), confusion=confusion, advice=next_steps)
    return ReportResult(written.markdown, written.html, written.figures)


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
