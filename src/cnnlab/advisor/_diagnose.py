"""What went wrong in one study step, read from its recorded runs: each rule judged per seed, then
across seeds, as a Diagnosis that names its rule, its thresholds and the numbers that fired it.

    found = diagnose(record, judged, space)   # ranked, best first; [] for a healthy step

A rule that holds on most seeds of a variant (more than half) proposes one config change; one
that holds on some seeds only, or has no change to make, is a note. A search step is judged on
its best trial's curves, its space's edges and its refused samples. Nothing here trains or reads
MLflow: the records are cnnlab.reports' own.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable

from cnnlab.advisor._curve_rules import (
    collapsed,
    divergence_failure,
    diverges,
    early,
    improving,
    longer,
    lower_lr,
    overfits,
    readable,
    regularize,
    shorter,
    underfits,
)
from cnnlab.advisor._diagnosis import MOST, NOTE, Diagnosis, curve, make
from cnnlab.advisor._search_rules import best_trial, edges, refusals
from cnnlab.reports import ExperimentRecord, Judged, RunRecord, group_variants
from cnnlab.tracking.tags import SEED_TAG, SEEDS_TAG, STEP_HASH_TAG, VARIANT_TAG


def diagnose(
    record: ExperimentRecord, judged: Judged | None = None, space: dict | None = None
) -> list[Diagnosis]:
    """Every diagnosis of one step, ranked (score, descending)."""
    found: list[Diagnosis] = []
    parents = list(dict.fromkeys(r.parent_id for r in record.runs if r.parent_id))
    groups = _variants(record)  # the runs outside any search
    for parent_id in parents:  # a search: its best trial's curves stand for it (Playbook)
        trials = [r for r in record.runs if r.parent_id == parent_id]
        parent = next((r for r in record.runs if r.run_id == parent_id), None)
        found += refusals(record.name, trials)
        best = best_trial(parent, trials)
        if best is not None:
            groups |= {name: [best] for name in group_variants([best])}
            found += edges(record.name, parent, best, space)
    for variant, runs in groups.items():
        found += _variant(record.name, variant, runs)
    if judged is not None and judged.verdict == "inconclusive":
        found.append(_undecided(record, judged))
    return sorted(found, key=lambda d: -d.score)


def _variants(record: ExperimentRecord) -> dict[str, list[RunRecord]]:
    """Finished runs of the current step, and its diverged ones; a seed run twice counts once
    (its latest run). Search trials are left to their search."""
    kept = {r.run_id for r in record.trained}
    kept |= {r.run_id for r in record.runs if divergence_failure(r) and _current(record, r)}
    runs = [r for r in record.runs if r.run_id in kept and not r.parent_id]
    return {v: list({_seed(r): r for r in rs}.values()) for v, rs in group_variants(runs).items()}


def _current(record: ExperimentRecord, run: RunRecord) -> bool:
    """ExperimentRecord.trained's test for a run of the step as it is, applied to failed runs."""
    step = record.tags.get(STEP_HASH_TAG)
    if step is not None and run.tags.get(STEP_HASH_TAG, step) != step:
        return False
    seeds = json.loads(record.tags.get(SEEDS_TAG, "{}"))
    variant = run.tags.get(VARIANT_TAG)
    return variant not in seeds or run.tags.get(SEED_TAG) in {str(s) for s in seeds[variant]}


def _variant(experiment: str, variant: str, runs: list[RunRecord]) -> list[Diagnosis]:
    out = _judge("divergence", experiment, variant, runs, diverges, lower_lr)
    out += collapsed(experiment, variant, runs)
    curves = [r for r in runs if r.status == "FINISHED" and readable(r)]
    finals = [curve(r, "val_loss")[-1] for r in curves]
    spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
    out += _judge("overfitting", experiment, variant, curves, overfits(spread), regularize)
    under = _judge("underfitting", experiment, variant, curves, underfits, longer)
    if not any(d.proposal for d in under):  # the stronger reading, and the same change
        out += _judge("train_longer", experiment, variant, curves, improving, longer)
    out += under + _judge("stop_earlier", experiment, variant, curves, early, shorter)
    return out


def _judge(kind, experiment, variant, runs, test: Callable, propose: Callable) -> list[Diagnosis]:
    """A per-seed rule across seeds: a proposal on most of them, else a note."""
    seen = [(r, test(r)) for r in runs]
    held = [(r, text) for r, text in seen if text]
    if not held:
        return []
    fired = len(held) > MOST * len(seen)
    proposed = propose([r for r, _ in held], runs) if fired else NOTE
    seeds = "seed" if len(held) == 1 else "seeds"
    evidence = f"holds on {len(held)} {seeds} of {len(seen)}: " + "; ".join(
        f"{_seed(r)}: {text}" for r, text in held
    )
    return [make(kind, experiment, variant, evidence, len(held), len(seen), proposed)]


def _undecided(record: ExperimentRecord, judged: Judged) -> Diagnosis:
    """An open hypothesis, about all the step's seeds: each open part with the seeds it needs."""
    parts = [p for p in judged.parts if p.verdict.startswith("inconclusive")]
    evidence = "; ".join(f"{p.claim}: {p.needed or p.verdict}" for p in parts) or judged.verdict
    seeds = len(record.trained)
    return make("undecided", record.name, None, evidence, seeds, seeds)


def _seed(run: RunRecord) -> str:
    seed = run.tags.get(SEED_TAG)
    return f"seed {seed}" if seed else run.name
