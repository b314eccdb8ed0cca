"""The study as evidence: per-variant noise bands, comparisons with a reference, hypotheses.

Everything here reads what `cnnlab study` stored in MLflow: experiment tags
`cnnlab.reference` and `cnnlab.expect` (JSON naming the reference experiment and variant),
`cnnlab.hypothesis`, `cnnlab.quick`, and run tags `cnnlab.variant` / `cnnlab.seed`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from cnnlab.reports._collect import SEED_TAG, ExperimentRecord, RunRecord
from cnnlab.reports._document import Table
from cnnlab.reports._evidence import (
    DIRECTIONS,
    Band,
    Difference,
    compare,
    group_variants,
    judge,
    selected_variant,
)

COMPARED = "test_accuracy"  # what each variant's row compares with the step's reference
QUICK_VERDICT = "not judged: quick runs are too short to test the study's claims"
Lookup = Callable[[str], ExperimentRecord | None]  # experiment name -> its record


def is_quick(record: ExperimentRecord) -> bool:
    return record.tags.get("cnnlab.quick") == "true"


def target_runs(target: dict, lookup: Lookup) -> tuple[str, list[RunRecord]] | None:
    """A stored reference {experiment, variant} -> (a label, its runs); None when not found."""
    record = lookup(target.get("experiment") or "")
    if record is None:
        return None
    groups = group_variants(record.trained)
    variant = target.get("variant") or selected_variant(groups)
    if variant not in groups:
        return None
    step = record.name.rsplit("/", 1)[-1]
    return f"{step}: {variant}", groups[variant]


def variants_table(record: ExperimentRecord, lookup: Lookup) -> tuple[Table, str]:
    """One row per variant: mean ± sd over its seeds, and the difference with the reference."""
    groups = group_variants(record.trained)
    reference = _reference(record, lookup)
    selected = selected_variant(groups)
    reference_ids = {r.run_id for r in reference[1]} if reference else set()
    rows = []
    for name, runs in groups.items():
        row = [
            name + (" (selected)" if name == selected and len(groups) > 1 else ""),
            ", ".join(r.tags.get(SEED_TAG, "-") for r in runs),
            Band.of(runs, "val_loss").text(percent=False),
            Band.of(runs, "val_accuracy").text(percent=True),
            Band.of(runs, "test_loss").text(percent=False),
            Band.of(runs, "test_accuracy").text(percent=True),
        ]
        if reference is not None and {r.run_id for r in runs} != reference_ids:
            diff = compare(runs, reference[1], COMPARED)
            row += [diff.text(), diff.verdict()]
        else:
            row += ["-", "(the reference)" if reference else "-"]
        rows.append(row)
    headers = ["variant", "seeds", "val loss", "val accuracy", "test loss", "test accuracy"]
    headers += ["test accuracy vs reference [95% interval]", "verdict"]
    return Table(headers, rows), _reference_sentence(reference, groups)


def _reference(record: ExperimentRecord, lookup: Lookup) -> tuple[str, list[RunRecord]] | None:
    text = record.tags.get("cnnlab.reference")
    return target_runs(json.loads(text), lookup) if text else None


def _reference_sentence(reference, groups: dict[str, list[RunRecord]]) -> str:
    n = max((len(runs) for runs in groups.values()), default=0)
    parts = [
        "Each variant as mean ± standard deviation over its seeds (n runs; the validation "
        "split is the same for every seed). The selected variant has the lowest mean "
        "validation loss."
    ]
    if reference is not None:
        parts.append(
            f"Differences are test accuracy minus that of **{reference[0]}** "
            f"(n={len(reference[1])}), with a 95% Welch interval; a verdict of better or worse "
            "needs the whole interval on one side of zero."
        )
    if n < 2:
        parts.append(
            "With one seed per variant no verdict is possible: seed noise alone can "
            "move a run by tenths of a point."
        )
    return " ".join(parts)


def hypotheses_table(records: list[ExperimentRecord], lookup: Lookup) -> Table | None:
    """One row per step with a hypothesis: the claim, what was measured, the verdict."""
    rows = []
    for record in records:
        text = record.tags.get("cnnlab.hypothesis")
        if not text:
            continue
        expect = json.loads(record.tags.get("cnnlab.expect", "null"))
        if expect is None:
            rows.append([_step(record), text, "(no machine-checkable expectation)", "-", "-"])
            continue
        measured, verdict = _judge(record, expect, lookup)
        rows.append([_step(record), text, _claim(expect), measured, verdict])
    if not rows:
        return None
    headers = ["step", "hypothesis", "expectation", "measured [95% interval]", "verdict"]
    return Table(headers, rows)


def _judge(record: ExperimentRecord, expect: dict, lookup: Lookup) -> tuple[str, str]:
    groups = group_variants(record.trained)
    name = expect.get("variant") or selected_variant(groups)
    reference = target_runs(expect["reference"], lookup)
    if name not in groups or reference is None:
        return "-", "inconclusive (no finished runs to compare)"
    diff: Difference = compare(groups[name], reference[1], expect["metric"])
    measured = f"{name}: {diff.text()} (n={diff.subject.n} vs {diff.reference.n})"
    if is_quick(record):
        return measured, QUICK_VERDICT
    return measured, judge(diff, expect["direction"], expect.get("min_difference", 0.0))


def _claim(expect: dict) -> str:
    subject = expect.get("variant") or "the selected variant"
    ref = expect["reference"]
    ref_text = f"{ref['experiment'].rsplit('/', 1)[-1]}: {ref.get('variant') or 'selected'}"
    margin = expect.get("min_difference", 0.0)
    scale = 100 if expect["metric"].endswith("accuracy") else 1
    unit = " pts" if scale == 100 else ""
    return (
        f"{subject} vs {ref_text}, {expect['metric']}: "
        f"{DIRECTIONS[expect['direction']]} (margin {margin * scale:g}{unit})"
    )


def _step(record: ExperimentRecord) -> str:
    return record.name.rsplit("/", 1)[-1]
