"""Build the report from what MLflow recorded: no number in it is typed in.

paths = write_report(uri, ["baseline", "architecture"], Path("report"))
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from cnnlab.reports._collect import (
    CURVES,
    SEED_TAG,
    VARIANT_TAG,
    ExperimentRecord,
    RunRecord,
    best_run,
    collect,
    differing_params,
    selection,
    tested_epoch,
)
from cnnlab.reports._confusion import best_model_section
from cnnlab.reports._document import Document, Figure, Section, Table, Written, write
from cnnlab.reports._evidence import Band, group_variants, selected_variant
from cnnlab.reports._hypotheses import Judged, hypotheses_section, judge_hypotheses
from cnnlab.reports._plots import curves_svg, trials_svg
from cnnlab.reports._search_findings import search_findings
from cnnlab.reports._verdicts import is_quick, variants_table
from cnnlab.tracking.tags import DESCRIPTION_TAG, HYPOTHESIS_TAG
from cnnlab.tracking.tags import PUBLISHED_PREFIX as PUBLISHED  # the study's figures per step

SELECTION_NOTE = (
    "Model selection here uses the validation split held out of the training set "
    "(`data.val_fraction`), and the test set is evaluated once per run, never tuned on. A run "
    "tests its best epoch on validation loss when `train.restore_best` is on and its last epoch "
    "otherwise (each run's table says which); a step's selected variant is chosen on its "
    "`select` measure (validation loss unless the step names another), and the best model "
    "across steps on validation accuracy, which every variant computes the same way (label "
    "smoothing raises a validation loss without making a model worse). The original study "
    "validated on the official test set and so selected its models on the same images it "
    "reported."
)
STUDY_SELECTION = "val_accuracy"  # what picks the best model across steps


def write_report(
    uri: str,
    experiments: list[str] | None,
    out: Path,
    confusion=None,
    advice=None,
) -> Written:
    """Collects the experiments and writes report.md, report.html and SVGs into `out`.

    `confusion(run) -> (matrix, class_names) | None` gives the best run's test confusion matrix
    (none without it); `advice(experiment names) -> Section` the "What to try next" section
    (cnnlab.advisor, which reads the runs through this package).
    """
    records = collect(uri, experiments)
    lookup = _lookup(uri, records)
    quick = any(is_quick(r) for r in records)
    doc = Document("cnnlab report")
    doc.sections.append(_overview(uri, records, quick))
    comparison = _study_comparison(records, quick)
    if comparison:
        doc.sections.append(comparison)
    hypotheses = hypotheses_section(judge_hypotheses(records, lookup), quick, records)
    if hypotheses:
        doc.sections.append(hypotheses)
    if advice is not None and records:
        doc.sections.append(advice([r.name for r in records]))
    for index, record in enumerate(records, start=1):
        doc.sections.append(_experiment_section(index, record, lookup))
    # Across steps, on a measure every variant computes alike (label smoothing raises a loss).
    best = best_run([r for e in records for r in e.trained], STUDY_SELECTION)
    matrix = confusion(best) if best is not None and confusion is not None else None
    if matrix is not None:  # None: a run that recorded no matrix
        doc.sections.append(best_model_section(best, *matrix))
    return write(doc, out)


def judge_experiments(uri: str, experiments: list[str]) -> list[Judged]:
    """The hypotheses of these study steps judged as the report judges them (references to
    other steps read from the same store), Holm's correction across them."""
    records = collect(uri, experiments)
    return judge_hypotheses(records, _lookup(uri, records))


QUICK_WARNING = (
    "**Quick runs: not comparable with the study.** This report comes from `cnnlab study "
    "--quick`, whose runs see a few thousand images for two short epochs, so that the whole "
    "study runs in a minute or two. Its figures test that the study runs end to end; they are "
    "far below the study's and say nothing about its claims. Run `cnnlab study` without "
    "`--quick` for figures that compare."
)


def _lookup(uri: str, records: list[ExperimentRecord]):
    """Experiment name -> record; a reference outside the report's experiments is read too."""
    known: dict[str, ExperimentRecord | None] = {r.name: r for r in records}

    def lookup(name: str) -> ExperimentRecord | None:
        if name not in known:
            from cnnlab.config import ConfigError

            try:
                known[name] = collect(uri, [name])[0]
            except ConfigError:
                known[name] = None
        return known[name]

    return lookup


def _overview(uri: str, records: list[ExperimentRecord], quick: bool) -> Section:
    runs = sum(len(e.runs) for e in records)
    section = Section("Overview")
    if quick:
        section.add(QUICK_WARNING)
    return section.add(
        f"Written {time.strftime('%Y-%m-%d %H:%M')} from the MLflow store `{_store_name(uri)}`: "
        f"{len(records)} experiment(s), {runs} run(s).",
        SELECTION_NOTE,
        "Losses are mean cross-entropy per image (not percentages); accuracies are shares of "
        "correctly classified images. `images seen` counts training images processed, so runs "
        "with different epoch definitions compare like for like.",
    )


def _store_name(uri: str) -> str:
    """An embedded store under the working directory is named relative to it; any other store
    without its credentials (a report is a file that gets shared)."""
    from cnnlab.tracking import shown, store_file

    path = store_file(uri)
    if path is not None and path.is_relative_to(Path.cwd()):
        return f"sqlite:///{path.relative_to(Path.cwd())}"
    return shown(uri)


def _study_comparison(records: list[ExperimentRecord], quick: bool) -> Section | None:
    """Only for a study: one row per step, the study's figures beside cnnlab's selected variant
    as mean ± sd over its seeds."""
    published_by_step = {r.name: _published(r) for r in records}
    if not any(published_by_step.values()):
        return None
    rows = []
    for record in records:
        published = published_by_step[record.name] or {"setting": "(not in the study)"}
        groups = group_variants(record.trained)
        selected = selected_variant(groups, selection(record))
        if selected is None:
            continue
        runs = groups[selected]
        rows.append(
            [
                record.name,
                published.get("setting", ""),
                published.get("test_loss", ""),
                published.get("train_loss", ""),
                published.get("accuracy", ""),
                selected,
                Band.of(runs, "test_loss").text(percent=False),
                _f(sum(_last(r, "train_loss") or 0 for r in runs) / len(runs)),
                Band.of(runs, "test_accuracy").text(percent=True),
                _int(runs[0].metrics.get("images_seen")),
            ]
        )
    headers = [
        "step",
        "study setting",
        "study test loss",
        "study train loss",
        "study accuracy",
        "cnnlab selected variant",
        "test loss",
        "mean final train loss",
        "test accuracy",
        "images seen",
    ]
    intro = (
        "The study's published figures (stored with each step's experiment) beside the variant "
        "cnnlab selected for that step (on validation loss, or the measure the step names), as "
        "mean ± standard deviation over its seeds (n runs). The study ran each setting once, "
        "unseeded."
    )
    section = Section("The study next to cnnlab")
    if quick:
        section.add(
            "**Quick runs:** no figure of cnnlab's below compares with the study's; the runs are "
            "far too short (see the top of the report)."
        )
    return section.add(intro, Table(headers, rows))


def _published(record: ExperimentRecord) -> dict[str, str]:
    tags = record.tags.items()
    return {k.removeprefix(PUBLISHED): v for k, v in tags if k.startswith(PUBLISHED)}


def _experiment_section(index: int, record: ExperimentRecord, lookup) -> Section:
    section = Section(f"{index}. {record.name}")
    runs = record.trained
    if record.tags.get(DESCRIPTION_TAG):
        section.add(record.tags[DESCRIPTION_TAG])
    if record.tags.get(HYPOTHESIS_TAG):
        section.add(f"Hypothesis: *{record.tags[HYPOTHESIS_TAG]}*")
    if not runs:
        return section.add("No finished training runs in this experiment.")
    trials = [r for r in runs if r.parent_id]
    seeded = any(SEED_TAG in r.tags for r in runs)
    # Architecture facts follow from the config, and seeds are reported as seeds: only the
    # other config keys count as changes.
    differ = [k for k in differing_params(runs) if not (seeded and k == "train.seed")]
    changes = [k for k in differ if not k.startswith("arch.")]
    groups = group_variants(runs)
    section.add(_differ_sentence(changes, len(groups), len(runs), seeded))
    firsts = [g[0] for g in groups.values()]
    if 2 < len(firsts) <= 12 and not trials:
        section.add(_steps_sentence(firsts, seeded))
    if any(VARIANT_TAG in r.tags for r in runs):
        table, sentence = variants_table(record, lookup)
        section.add(sentence, table)
    labels = _labels(runs, differ)
    section.add(Table(*_runs_table(runs, differ, labels)))
    slug = _slug(record.name)
    named = {_group_label(name, group, labels): group for name, group in groups.items()}
    for key in CURVES:
        svg = curves_svg(named, key)
        section.add(Figure(f"{slug}-{key}.svg", svg, f"{record.name}: {key} against epoch"))
    if trials:
        objective = "best_val_loss"
        svg = trials_svg(trials, differing_params(trials), objective)
        section.add(Figure(f"{slug}-trials.svg", svg, f"{record.name}: {objective} per trial"))
    section.add(*search_findings(record, slug))
    select = selection(record)
    best = best_run(runs, select)
    on = select.replace("val_", "validation ")
    section.add(f"Best run on {on}: **{labels[best.run_id]}** (`{best.run_id}`).")
    return section


def _group_label(name: str, group: list[RunRecord], labels: dict[str, str]) -> str:
    """A variant's name; a lone run outside a study keeps its label with what differs."""
    return name if VARIANT_TAG in group[0].tags else labels[group[0].run_id]


def _differ_sentence(differ: list[str], groups: int, n: int, seeded: bool) -> str:
    what = f"{n} runs" if groups == n else f"{groups} variants, {n} runs"
    if n == 1:
        return "One run."
    if groups == 1 and seeded and not differ:
        return f"One variant, {n} runs that differ only in `train.seed`."
    if not differ:
        return f"{what} with identical configurations (they differ only by chance)."
    named = ", ".join(f"`{k}`" for k in differ)
    if len(differ) == 1:
        return f"{what}; they differ in one parameter: {named}."
    return f"{what}; **more than one parameter changed** between them: {named}."


def _steps_sentence(runs: list[RunRecord], seeded: bool) -> str:
    """What changed from each variant to the next, flagging a step that changed several things."""
    parts = []
    for before, after in zip(runs, runs[1:]):
        keys = [k for k in differing_params([before, after]) if not k.startswith("arch.")]
        keys = [k for k in keys if not (seeded and k == "train.seed")]
        named = ", ".join(f"`{k}`" for k in keys) or "nothing"
        warn = " (**more than one change**)" if len(keys) > 1 else ""
        names = [r.tags.get(VARIANT_TAG, r.name) for r in (before, after)]
        parts.append(f"{names[0]} -> {names[1]}: {named}{warn}")
    return f"From one {'variant' if seeded else 'run'} to the next: " + "; ".join(parts) + "."


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
        "tested epoch",
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
                tested_epoch(run),
                _f(_last(run, "train_loss")),
                _int(m.get("epochs_run")),
                _int(m.get("images_seen")),
                _f(m.get("train_seconds"), 1),
            ]
        )
    return headers, rows


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
