"""Build the report from what MLflow recorded: no number in it is typed in.

paths = write_report(uri, ["baseline", "architecture"], Path("report"))
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from cnnlab.reports._collect import (
    CURVES,
    ExperimentRecord,
    RunRecord,
    best_run,
    collect,
    differing_params,
)
from cnnlab.reports._document import Document, Figure, Section, Table, write
from cnnlab.reports._plots import confusion_svg, curves_svg, trials_svg

PUBLISHED = "cnnlab.published."  # experiment tags holding the study's own figures for a step
SELECTION_NOTE = (
    "Model selection here uses the validation split held out of the training set "
    "(`data.val_fraction`): the best epoch and the best run are chosen on validation loss, and "
    "the test set is evaluated once per run, never tuned on. The original study validated on the "
    "official test set and so selected its models on the same images it reported."
)


def write_report(
    uri: str,
    experiments: list[str] | None,
    out: Path,
    confusion=None,
) -> list[Path]:
    """Collects the experiments and writes report.md, report.html and SVGs into `out`.

    `confusion(run) -> (matrix, class_names)` evaluates a run's logged model on the test set;
    without it the report has no confusion matrix.
    """
    records = collect(uri, experiments)
    doc = Document("cnnlab report")
    doc.sections.append(_overview(uri, records))
    comparison = _study_comparison(records)
    if comparison:
        doc.sections.append(comparison)
    for index, record in enumerate(records, start=1):
        doc.sections.append(_experiment_section(index, record))
    best = best_run([r for e in records for r in e.trained])
    if best is not None and confusion is not None:
        doc.sections.append(_best_model_section(best, *confusion(best)))
    return write(doc, out)


def _overview(uri: str, records: list[ExperimentRecord]) -> Section:
    runs = sum(len(e.runs) for e in records)
    return Section("Overview").add(
        f"Written {time.strftime('%Y-%m-%d %H:%M')} from the MLflow store `{_shown(uri)}`: "
        f"{len(records)} experiment(s), {runs} run(s).",
        SELECTION_NOTE,
        "Losses are mean cross-entropy per image (not percentages); accuracies are shares of "
        "correctly classified images. `images seen` counts training images processed, so runs "
        "with different epoch definitions compare like for like.",
    )


def _shown(uri: str) -> str:
    """An embedded store under the working directory is named relative to it."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if path.is_relative_to(Path.cwd()):
            return f"sqlite:///{path.relative_to(Path.cwd())}"
    return uri


def _study_comparison(records: list[ExperimentRecord]) -> Section | None:
    """Only for a study: one row per step, the study's figures beside cnnlab's best run."""
    published_by_step = {r.name: _published(r) for r in records}
    if not any(published_by_step.values()):
        return None
    rows = []
    for record in records:
        published = published_by_step[record.name] or {"setting": "(not in the study)"}
        best = best_run(record.trained)
        if best is None:
            continue
        m = best.metrics
        rows.append(
            [
                record.name,
                published.get("setting", ""),
                published.get("test_loss", ""),
                published.get("train_loss", ""),
                published.get("accuracy", ""),
                best.name,
                _f(m.get("test_loss")),
                _f(_last(best, "train_loss")),
                _pct(m.get("test_accuracy")),
                _int(m.get("images_seen")),
            ]
        )
    headers = [
        "step",
        "study setting",
        "study test loss",
        "study train loss",
        "study accuracy",
        "cnnlab best run",
        "test loss",
        "train loss",
        "test accuracy",
        "images seen",
    ]
    return Section("The study next to cnnlab").add(
        "The study's published figures (stored with each step's experiment) beside the run "
        "cnnlab selected for that step on validation loss.",
        Table(headers, rows),
    )


def _published(record: ExperimentRecord) -> dict[str, str]:
    tags = record.tags.items()
    return {k.removeprefix(PUBLISHED): v for k, v in tags if k.startswith(PUBLISHED)}


def _experiment_section(index: int, record: ExperimentRecord) -> Section:
    section = Section(f"{index}. {record.name}")
    runs = record.trained
    if record.tags.get("cnnlab.description"):
        section.add(record.tags["cnnlab.description"])
    if not runs:
        return section.add("No finished training runs in this experiment.")
    trials = [r for r in runs if r.parent_id]
    differ = differing_params(runs)
    # Architecture facts follow from the config; only config keys count as changes.
    section.add(_differ_sentence([k for k in differ if not k.startswith("arch.")], len(runs)))
    if 2 < len(runs) <= 12 and not trials:
        section.add(_steps_sentence(runs))
    labels = _labels(runs, differ)
    section.add(Table(*_runs_table(runs, differ, labels)))
    slug = _slug(record.name)
    for key in CURVES:
        svg = curves_svg(runs, key, labels)
        section.add(Figure(f"{slug}-{key}.svg", svg, f"{record.name}: {key} against epoch"))
    if trials:
        objective = "best_val_loss"
        svg = trials_svg(trials, differing_params(trials), objective)
        section.add(Figure(f"{slug}-trials.svg", svg, f"{record.name}: {objective} per trial"))
    best = best_run(runs)
    section.add(f"Best run on validation loss: **{labels[best.run_id]}** (`{best.run_id}`).")
    return section


def _differ_sentence(differ: list[str], n: int) -> str:
    if n == 1:
        return "One run."
    if not differ:
        return f"{n} runs with identical configurations (they differ only by chance)."
    named = ", ".join(f"`{k}`" for k in differ)
    if len(differ) == 1:
        return f"{n} runs; they differ in one parameter: {named}."
    return f"{n} runs; **more than one parameter changed** between them: {named}."


def _steps_sentence(runs: list[RunRecord]) -> str:
    """What changed from each run to the next, flagging a step that changed several things."""
    parts = []
    for before, after in zip(runs, runs[1:]):
        keys = [k for k in differing_params([before, after]) if not k.startswith("arch.")]
        named = ", ".join(f"`{k}`" for k in keys) or "nothing"
        warn = " (**more than one change**)" if len(keys) > 1 else ""
        parts.append(f"{before.name} -> {after.name}: {named}{warn}")
    return "From one run to the next: " + "; ".join(parts) + "."


def _labels(runs: list[RunRecord], differ: list[str]) -> dict[str, str]:
    shown = [k for k in differ if not k.startswith("arch.")][:4]
    labels = {}
    for run in runs:
        values = ", ".join(f"{k.split('.')[-1]}={run.params.get(k, '-')}" for k in shown)
        labels[run.run_id] = f"{run.name} ({values})" if values else run.name
    return labels


def _runs_table(runs, differ, labels) -> tuple[list[str], list[list[str]]]:
    headers = [
        "run",
        *differ,
        "best val loss",
        "best val acc",
        "test loss",
        "test acc",
        "final train loss",
        "epochs",
        "images seen",
        "seconds",
    ]
    rows = []
    for run in runs:
        m = run.metrics
        rows.append(
            [
                run.name,
                *[run.params.get(k, "-") for k in differ],
                _f(m.get("best_val_loss")),
                _pct(m.get("best_val_accuracy")),
                _f(m.get("test_loss")),
                _pct(m.get("test_accuracy")),
                _f(_last(run, "train_loss")),
                _int(m.get("epochs_run")),
                _int(m.get("images_seen")),
                _f(m.get("train_seconds"), 1),
            ]
        )
    return headers, rows


def _best_model_section(best: RunRecord, matrix, class_names) -> Section:
    per_class = [
        [name, _int(sum(row)), _pct(row[i] / max(1, sum(row)))]
        for i, (name, row) in enumerate(zip(class_names, matrix))
    ]
    return Section("Best model").add(
        f"Run **{best.name}** of experiment `{best.experiment}` (`{best.run_id}`), chosen on "
        f"validation loss; its logged weights evaluated on the test set.",
        Figure("best-confusion.svg", confusion_svg(matrix, class_names), "test confusion matrix"),
        Table(["class", "test images", "accuracy"], per_class),
    )


def _last(run: RunRecord, key: str):
    points = run.history.get(key)
    return points[-1][1] if points else None


def _f(value, digits: int = 4) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def _pct(value) -> str:
    return "-" if value is None else f"{100 * float(value):.2f}%"


def _int(value) -> str:
    return "-" if value is None else f"{int(value):,}"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "experiment"
