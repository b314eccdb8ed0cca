"""The study as evidence: per-variant noise bands, comparisons with a reference, hypotheses.

Everything here reads what `cnnlab study` stored in MLflow: experiment tags
`cnnlab.reference` and `cnnlab.expect` (JSON naming the reference experiment and variant),
`cnnlab.hypothesis`, `cnnlab.quick`, and run tags `cnnlab.variant` / `cnnlab.seed`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from cnnlab.reports._collect import ExperimentRecord, RunRecord, selection
from cnnlab.reports._document import Table
from cnnlab.reports._evidence import (
    Band,
    compare,
    group_variants,
    selected_variant,
)
from cnnlab.tracking.tags import QUICK_TAG, REFERENCE_TAG, SEED_TAG, Reference

COMPARED = "test_accuracy"  # what each variant's row compares with the step's reference
QUICK_VERDICT = "not judged: quick runs are too short to test the study's claims"
Lookup = Callable[[str], ExperimentRecord | None]  # experiment name -> its record


def is_quick(record: ExperimentRecord) -> bool:
    return record.tags.get(QUICK_TAG) == "true"


def target_runs(target: Reference, lookup: Lookup) -> tuple[str, list[RunRecord]] | None:
    """A stored reference {experiment, variant} -> (a label, its runs); None when not found."""
    found = target_variant(target, lookup)
    if found is None:
        return None
    record, variant, runs = found
    return f"{record.name.rsplit('/', 1)[-1]}: {variant}", runs


def target_variant(
    target: Reference, lookup: Lookup
) -> tuple[ExperimentRecord, str, list[RunRecord]] | None:
    """A stored reference -> (its step's record, the variant's name, its runs); None when not
    found. A reference without a variant is the step's selected variant."""
    record = lookup(target.experiment)
    if record is None:
        return None
    groups = group_variants(record.trained)
    variant = target.variant or selected_variant(groups, selection(record))
    if variant not in groups:
        return None
    return record, variant, groups[variant]


def variants_table(record: ExperimentRecord, lookup: Lookup) -> tuple[Table, str]:
    """One row per variant: mean ± sd over its seeds, and the difference with the reference."""
    groups = group_variants(record.trained)
    reference = _reference(record, lookup)
    selected = selected_variant(groups, selection(record))
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
            # Within the step, variants share seeds: the comparison uses that design.
            same_step = reference_ids <= {r.run_id for r in record.trained}
            diff = compare(runs, reference[1], COMPARED, record.trained if same_step else None)
            row += [diff.text(), diff.verdict()]
        else:
            row += ["-", "(the reference)" if reference else "-"]
        rows.append(row)
    headers = ["variant", "seeds", "val loss", "val accuracy", "test loss", "test accuracy"]
    headers += ["test accuracy vs reference [95% interval]", "exploratory verdict"]
    return Table(headers, rows), _reference_sentence(reference, groups, selection(record))


def _reference(record: ExperimentRecord, lookup: Lookup) -> tuple[str, list[RunRecord]] | None:
    text = record.tags.get(REFERENCE_TAG)
    return target_runs(Reference.from_dict(json.loads(text)), lookup) if text else None


def _reference_sentence(reference, groups: dict[str, list[RunRecord]], select: str) -> str:
    n = max((len(runs) for runs in groups.values()), default=0)
    best = {"val_loss": "lowest mean validation loss", "val_accuracy": "highest mean "
            "validation accuracy"}[select]  # fmt: skip
    parts = [
        "Each variant as mean ± standard deviation over its seeds (n runs; the validation "
        f"split is the same for every seed). The selected variant has the {best}."
    ]
    if reference is not None:
        parts.append(
            f"Differences are test accuracy minus that of **{reference[0]}** "
            f"(n={len(reference[1])}), with a 95% interval: by seed where the variants share "
            "their seeds (blocked within a step, else paired), else Welch's. A verdict of "
            "better or worse needs the whole interval on one side of zero; inconclusive means "
            "neither is shown, which is not evidence of no difference (a claim that two "
            "variants are the same within a margin is judged under Hypotheses and verdicts). "
            "These rows are exploratory: many rows, no correction for testing them all; the "
            "hypotheses are the study's tests."
        )
    if n < 2:
        parts.append(
            "With one seed per variant no verdict is possible: seed noise alone can "
            "move a run by tenths of a point."
        )
    return " ".join(parts)
