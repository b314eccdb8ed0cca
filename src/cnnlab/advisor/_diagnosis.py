"""A diagnosis of a study step as data: what each rule found, with its rule in words, the
thresholds it applies, and how diagnoses rank. The rules themselves: advisor._curve_rules (one
variant's runs, seed by seed) and advisor._search_rules (a search's trials and space).

    make("train_longer", experiment, variant, evidence, held, judged, proposed) -> Diagnosis
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnlab.reports import RunRecord

# Divergence: NaN or inf in a loss (SageMaker Debugger's ExplodingTensor rule), or a finite blow-up:
# a training loss above DIVERGE_FACTOR x its running minimum. The factor is this module's choice,
# for what the Tuning Playbook calls "training loss many standard deviations worse".
DIVERGE_FACTOR = 4.0
LR_CUT = 10.0  # the fix: one decade lower, the Playbook's log-scale step for learning rates
# The course study's 2x2 map (experiments/3-architecture.toml; models/_summary.py warns at it).
COLLAPSED_MAP = 2
# Tuning Playbook, "Deciding how long to train": a best step "consistently in the last 25% of
# training" -> train longer; "always during the first 10% of training" -> far too many steps.
LATE = 0.75
EARLY = 0.1
# "Still improving" needs the last quarter to bring at least this share of the validation
# loss's whole fall: the Playbook's "still improving meaningfully", not a flat tail whose
# minimum lands late by chance (the study's 6x6 model at 20 epochs brings 6%).
STILL_FALLING = 0.15
EARLY_MIN_EPOCHS = 10  # a tenth of fewer epochs is under one epoch
STOP_MARGIN = 1.5  # stop earlier at this x the latest best epoch: room for a later best
MIN_EPOCHS = 3  # curve rules need a last quarter of two epochs (at least), plus one before it
# Overfitting: the rise after the minimum must beat the seeds' spread (sd of the final val_loss)
# and 10% of the minimum, after SageMaker Debugger's Overfit rule (ratio_threshold 0.1): the sd
# alone fires on flat, noisy tails, whose minimum is biased low by the noise.
OVERFIT_RISE = 0.1
DROPOUT = 0.3  # the head dropout proposed where there was none
DECAY_FACTOR, DECAY_START = 10.0, 1e-4  # weight decay x10, or 1e-4 where it was 0
# Playbook: best points "towards the edge of a search space" -> expand it; "outer 10%" is ours.
EDGE = 0.1
WIDEN_LOG = 10.0  # a log range grows one decade on that side; a linear one by half its width
REFUSED = 0.5  # search_findings' "refused as impossible architectures" share that makes a note
MOST = 0.5  # a variant's diagnosis proposes when it holds on more than this share of its seeds
# Rank (higher first): what breaks a run, then what wastes the step, then notes.
SCORES = {"divergence": 100, "collapsed_map": 90, "train_longer": 60, "stop_earlier": 50,
          "overfitting": 70, "underfitting": 65, "search_edge": 55, "search_refusals": 30,
          "undecided": 20}  # fmt: skip
KINDS = tuple(SCORES)
BETTER = {"metric": "test_accuracy", "direction": "better"}


@dataclass(frozen=True)
class Diagnosis:
    kind: str  # one of KINDS
    experiment: str  # the step's experiment name (record.name)
    variant: str | None  # the variant it concerns; None for a whole search / step
    rule: str  # the rule applied, in one sentence, naming its thresholds
    evidence: str  # the numbers that fired it: epochs, values, shapes, seed by seed
    held: int  # seeds (runs) on which it holds
    judged: int  # seeds (runs) judged
    proposal: bool  # True: a next step is proposed from it; False: a note only
    change: dict[str, Any]  # the ONE config change: dotted key -> new value; {} for a note
    hypothesis: str  # the proposed step's hypothesis sentence ("" for a note or a tune step)
    expect: dict[str, Any] | None  # the proposed step's expectation; None for a note
    score: float  # rank: higher first


Proposed = tuple[dict[str, Any], str, dict[str, Any] | None]  # change, hypothesis, expect
NOTE: Proposed = ({}, "", None)


def make(kind, experiment, variant, evidence, held, judged, proposed=NOTE) -> Diagnosis:
    """A change makes it a proposal; without one, a note with no hypothesis or expectation."""
    change, hypothesis, expect = proposed if proposed[0] else NOTE
    score = SCORES[kind] * held / max(judged, 1)
    what = (bool(change), change, hypothesis, expect, score)
    return Diagnosis(kind, experiment, variant, RULES[kind], evidence, held, judged, *what)


RULES = {
    "divergence": f"A run diverged when it failed as diverged, logged a NaN or infinite loss, or "
    f"its training loss rose above {DIVERGE_FACTOR:g}x its running minimum or {DIVERGE_FACTOR:g}x "
    "the loss of a uniform guess over the classes (DIVERGE_FACTOR); "
    f"the fix divides train.lr by {LR_CUT:g}.",
    "overfitting": "Overfitting: validation loss ends above its minimum while training loss "
    "keeps falling, by more than the seeds' standard deviation of the final validation loss "
    f"and more than OVERFIT_RISE = {OVERFIT_RISE:.0%} of the minimum.",
    "underfitting": "Under-fitting as the course study read it: the final training loss is at "
    "or above the final validation loss and both still fall (least-squares slope < 0) over the "
    "last quarter of the epochs run; it replaces train_longer, whose change it shares.",
    "train_longer": f"Still improving: the best validation epoch lies after {LATE:.0%} of the "
    "epochs run (LATE), the last epoch's validation loss is within the curve's noise of the "
    "minimum (the median epoch-to-epoch change over the last quarter) or falling over it, and "
    f"the last quarter brought at least {STILL_FALLING:.0%} of the curve's whole fall "
    "(STILL_FALLING).",
    "stop_earlier": f"Too long: the best validation epoch lies in the first {EARLY:.0%} (EARLY) "
    f"of at least {EARLY_MIN_EPOCHS} epochs run; the fix trains {STOP_MARGIN:g}x the latest "
    "best epoch of the variant's seeds.",
    "collapsed_map": "The map reaching the head has collapsed when its height or width is at "
    f"most {COLLAPSED_MAP} (COLLAPSED_MAP), or a conv block sees a map smaller than its kernel "
    "(model.kernel_size); architectural, so it holds on every seed alike.",
    "search_edge": "The best trial's value of a searched parameter lies in the outer "
    f"{EDGE:.0%} (EDGE) of its range (in log space for a log distribution): that side is "
    f"widened, {WIDEN_LOG:g}x for a log range, half the width for a linear one (a positive low "
    "at most halved, a low of 0 kept); a tune step, so no hypothesis or expectation of its own.",
    "search_refusals": f"A search whose samples are mostly (more than REFUSED = {REFUSED:.0%}) "
    "refused as impossible architectures has a space to narrow; a note, since which bound to "
    "move depends on the architecture, not on one number.",
    "undecided": "A hypothesis with no part refuted and some part neither confirmed nor refuted "
    "on the seeds run is open: more seeds, not another change, decide it.",
}


def curve(run: RunRecord, key: str) -> list[float]:
    return [v for _, v in run.history.get(key, [])]


def number(run: RunRecord, key: str) -> float | None:
    try:
        return float(run.params[key])
    except (KeyError, ValueError):
        return None


def clean(value: float) -> float:
    """0.0001 rather than 0.00010000000000000002 in a step file."""
    return float(f"{value:.6g}")
