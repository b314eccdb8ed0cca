"""What a search found, read back from MLflow alone: impossible samples, parameter importances
and Optuna's own figures.

    blocks = search_findings(record, "architecture")   # [] when the experiment holds no search

Whichever engine ran the search (Hyperopt or Optuna), its child runs are loaded into an
in-memory Optuna study, so a copy of the MLflow store gives the same findings; the fANOVA
evaluator is seeded and the SVGs carry no date, so a rerun gives the same report too.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cnnlab.reports._collect import ExperimentRecord, RunRecord
from cnnlab.reports._document import Figure, Table
from cnnlab.search import INVALID_ARCHITECTURE, Dimension, Space, dimensions_from_dict
from cnnlab.tracking import param_text as recorded_text  # as a trial's params are written
from cnnlab.tracking.tags import FAIL_REASON_TAG, PRUNED_TAG, TRIAL_TAG

SEED = 0  # of fANOVA's random forest
# Optuna's state of a sample that is not a COMPLETE trial (a trained one lacks its objective).
_STATES = {"refused": "FAIL", "failed": "FAIL", "trained": "FAIL", "pruned": "PRUNED"}

Block = str | Table | Figure


def search_findings(record: ExperimentRecord, slug: str) -> list[Block]:
    """Blocks for one experiment holding a search (a parent run with param search.space and
    its child trial runs); [] when the experiment holds no search."""
    parents = [r for r in record.runs if "search.space" in r.params]
    blocks: list[Block] = []
    for index, parent in enumerate(parents, start=1):
        children = [r for r in record.runs if r.parent_id == parent.run_id]
        # Two searches in one experiment (another name or seed) need figure files of their own.
        prefix = slug if len(parents) == 1 else f"{slug}-search{index}"
        with _quiet():
            blocks += _findings(record.name, parent, children, prefix)
    return blocks


def _findings(name: str, parent: RunRecord, children: list[RunRecord], prefix: str) -> list:
    objective = parent.params.get("search.objective", "val_loss")
    metric = f"best_{objective}"  # what the search selected on, as each trial logged it
    space = _space(parent)
    study = _study(space, children, metric, maximize=objective == "val_accuracy")
    done = sum(t.value is not None for t in study.trials)
    blocks: list[Block] = [_counts(parent, objective, children), *_importances(study, metric)]
    figures = [
        ("importance", isinstance(blocks[-1], Table), f"importance of each parameter for {metric}"),
        ("history", done > 0, f"{metric} of each trained trial, and the best so far"),
        ("parallel", done > 0 and bool(space), f"each trained trial's parameters and {metric}"),
    ]
    for kind, drawable, caption in figures:
        if drawable:
            svg = _draw(kind, study, metric)
            blocks.append(Figure(f"{prefix}-{kind}.svg", svg, f"{name}: {caption}"))
    return blocks


def _space(parent: RunRecord) -> Space:
    try:
        return dimensions_from_dict(json.loads(parent.params["search.space"]))
    except (ValueError, TypeError, AttributeError):  # ConfigError is a ValueError; so is JSON's
        return []  # e.g. a space too long for an MLflow param, logged cut short


def _outcome(run: RunRecord) -> str:
    if run.tags.get(FAIL_REASON_TAG) == INVALID_ARCHITECTURE:
        return "refused"
    if run.status not in ("FINISHED", "FAILED"):  # interrupted or superseded: drawn again
        return "unfinished"
    if run.tags.get(PRUNED_TAG) == "true":
        return "pruned"
    return "trained" if run.status == "FINISHED" else "failed"


def _counts(parent: RunRecord, objective: str, children: list[RunRecord]) -> str:
    n = Counter(_outcome(c) for c in children)
    drawn = len(children) - n["unfinished"]
    engine = parent.params.get("search.engine", "unknown engine")
    text = f"Search `{parent.name}` ({engine}, objective `{objective}`). "
    if not drawn:
        return text + "No sample has an outcome yet."
    text += (
        f"{drawn} samples drawn: {n['refused']} ({n['refused'] / drawn:.0%}) refused as "
        f"impossible architectures before training, {n['trained']} trained, "
        f"{n['failed']} failed, {n['pruned']} pruned."
    )
    if n["unfinished"]:
        text += f" {n['unfinished']} interrupted or running child run(s) are not counted."
    return text


def _study(space: Space, children: list[RunRecord], metric: str, maximize: bool):
    """Every sample with an outcome as an Optuna trial, in trial order so that Optuna's trial
    numbers are the search's; only trained trials with a finite objective are COMPLETE."""
    import optuna
    from optuna.trial import TrialState, create_trial

    study = optuna.create_study(direction="maximize" if maximize else "minimize")
    runs = sorted((c for c in children if _outcome(c) != "unfinished"), key=_trial_key)
    values = {d.key: [_parse(d, r.params.get(d.key)) for r in runs] for d in space}
    dists = {d.key: _distribution(d, [v for v in values[d.key] if v is not None]) for d in space}
    for i, run in enumerate(runs):
        params = {k: vs[i] for k, vs in values.items() if vs[i] is not None}
        value = run.metrics.get(metric, math.nan) if _outcome(run) == "trained" else math.nan
        state = "COMPLETE" if math.isfinite(value) else _STATES[_outcome(run)]
        trial = create_trial(
            state=TrialState[state],
            value=value if state == "COMPLETE" else None,
            params=params,
            distributions={k: dists[k] for k in params},
        )
        study.add_trial(trial)
    return study


def _trial_key(run: RunRecord) -> tuple[int, int]:
    number = run.tags.get(TRIAL_TAG, "")
    return (int(number) if number.isdigit() else 1 << 30, run.start_time)


def _parse(dim: Dimension, text: str | None) -> Any:
    """A logged param back to the value the search drew; None when it is not one."""
    if text is None or dim.dist == "choice":
        return text
    try:
        value = float(text)
    except ValueError:
        return None
    if dim.integer and value.is_integer():
        return int(value)
    return value if math.isfinite(value) else None


def _distribution(dim: Dimension, values: list[Any]):
    """The space's distribution, widened to hold every recorded value: rounding to q may land
    past a bound, and Optuna refuses a trial whose value lies outside its distribution."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if dim.dist == "choice":
        options = [recorded_text(o) for o in dim.options]
        return CategoricalDistribution(list(dict.fromkeys(options + sorted(values))))
    low = min([dim.finish(dim.low), *values])
    high = max([dim.finish(dim.high), *values])
    if dim.integer and all(isinstance(v, int) for v in values):
        # Step 1, not q: a q that is not a whole number puts values off any integer grid.
        return IntDistribution(int(low), int(high), log=dim.log and low >= 1)
    return FloatDistribution(float(low), float(high), log=dim.log and low > 0)


def _importances(study, metric: str) -> list[Block]:
    """Optuna's fANOVA importances as a table, or one sentence saying why there are none."""
    from optuna.importance import get_param_importances

    values = [t.value for t in study.trials if t.value is not None]
    if len(set(values)) < 2:
        return [
            f"Parameter importances need at least two trained trials with different "
            f"`{metric}`; this search has {len(values)} trained trial(s)."
        ]
    try:
        raw = get_param_importances(study, evaluator=_evaluator(), normalize=False)
        reason = "no searched parameter was read back (`search.space`, trial params)."
    except (RuntimeError, ValueError) as exc:  # e.g. no parameter varies across the trials
        raw, reason = {}, str(exc)
    if not raw:
        return [f"Parameter importances could not be computed from the trained trials: {reason}"]
    total = sum(raw.values())
    rows = [
        [key, f"{value:.3f}", f"{value / total:.0%}" if total > 0 else "-"]
        for key, value in raw.items()
    ]
    return [
        f"Importance of each searched parameter for `{metric}`, from the {len(values)} trained "
        f"trials by Optuna's fANOVA evaluator (seed {SEED}): the share of the objective's "
        "variance the parameter explains on its own, and those shares scaled to 100%.",
        Table(["parameter", "importance", "share"], rows),
    ]


def _evaluator():
    from optuna.importance import FanovaImportanceEvaluator

    return FanovaImportanceEvaluator(seed=SEED)


def _draw(kind: str, study, metric: str) -> str:
    """One of Optuna's matplotlib figures as SVG text."""
    import matplotlib
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis

    if plt.get_backend().lower() != "agg":
        plt.switch_backend("agg")  # drawn to SVG text, never shown: needs no display
    plot = {
        "importance": lambda: vis.plot_param_importances(study, _evaluator(), target_name=metric),
        "history": lambda: vis.plot_optimization_history(study, target_name=metric),
        "parallel": lambda: vis.plot_parallel_coordinate(study, target_name=metric),
    }[kind]
    # Optuna sets pyplot's ggplot style for good; the context restores rcParams after, so the
    # report's other figures keep theirs. A fixed salt and no date: the same store, the same SVG.
    with matplotlib.rc_context({"svg.hashsalt": "cnnlab"}):
        fig = plot().get_figure()
        try:
            out = io.StringIO()
            fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
            return out.getvalue()
        finally:
            plt.close(fig)  # pyplot keeps every figure it made until closed


@contextmanager
def _quiet() -> Iterator[None]:
    """Optuna's notes on the study made here (created in memory, experimental arguments) and
    matplotlib's on flat axes of few trials are not findings; the report leaves them out."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)
