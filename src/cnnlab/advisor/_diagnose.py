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
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnnlab.reports import ExperimentRecord, Judged, RunRecord, group_variants
from cnnlab.reports._collect import SEED_TAG, SEEDS_TAG, STEP_HASH_TAG, VARIANT_TAG
from cnnlab.search._records import INVALID_ARCHITECTURE
from cnnlab.search._space import _flat_keys

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
        found += _refusals(record.name, trials)
        best = _best_trial(parent, trials)
        if best is not None:
            groups |= {name: [best] for name in group_variants([best])}
            found += _edges(record.name, parent, best, space)
    for variant, runs in groups.items():
        found += _variant(record.name, variant, runs)
    if judged is not None and judged.verdict == "inconclusive":
        found.append(_undecided(record, judged))
    return sorted(found, key=lambda d: -d.score)


def _variants(record: ExperimentRecord) -> dict[str, list[RunRecord]]:
    """Finished runs of the current step, and its diverged ones; a seed run twice counts once
    (its latest run). Search trials are left to their search."""
    trained = {r.run_id for r in record.trained}
    runs = [r for r in record.runs if r.run_id in trained or (_failure(r) and _current(record, r))]
    runs = [r for r in runs if not r.parent_id]
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
    out = _judge("divergence", experiment, variant, runs, _diverges, _lower_lr)
    out += _collapsed(experiment, variant, runs)
    curves = [r for r in runs if r.status == "FINISHED" and _readable(r)]
    finals = [_curve(r, "val_loss")[-1] for r in curves]
    spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
    out += _judge("overfitting", experiment, variant, curves, _overfits(spread), _regularize)
    under = _judge("underfitting", experiment, variant, curves, _underfits, _longer)
    if not any(d.proposal for d in under):  # the stronger reading, and the same change
        out += _judge("train_longer", experiment, variant, curves, _improving, _longer)
    out += under + _judge("stop_earlier", experiment, variant, curves, _early, _shorter)
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
    return [_make(kind, experiment, variant, evidence, len(held), len(seen), proposed)]


def _make(kind, experiment, variant, evidence, held, judged, proposed=NOTE) -> Diagnosis:
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


def _diverges(run: RunRecord) -> str | None:
    if _failure(run):
        logged = len(_curve(run, "train_loss"))
        return f"{run.status}, {_failure(run)}, after {logged} epoch(s) logged"
    for key in ("train_loss", "val_loss"):
        bad = [(e, v) for e, v in run.history.get(key, []) if not math.isfinite(v)]
        if bad:
            return f"{key} {bad[0][1]} in epoch {bad[0][0]}"
    chance = _chance_loss(run)
    for epoch, value in run.history.get("train_loss", []):
        if chance is not None and value > DIVERGE_FACTOR * chance:
            return (
                f"train_loss {value:.4g} in epoch {epoch}, {value / chance:.0f}x the loss of a "
                f"uniform guess (ln {run.params['arch.classes']} = {chance:.3g})"
            )
    low = math.inf
    for epoch, value in run.history.get("train_loss", []):
        if 0 < low < value / DIVERGE_FACTOR:
            return (
                f"train_loss {value:.4g} in epoch {epoch}, {value / low:.1f}x its minimum {low:.4g}"
            )
        low = min(low, value)
    return None


def _chance_loss(run: RunRecord) -> float | None:
    """Cross-entropy of a uniform guess over the run's classes; None where it logged none."""
    classes = run.params.get("arch.classes", "")
    return math.log(int(classes)) if classes.isdigit() and int(classes) > 1 else None


def _failure(run: RunRecord) -> str:
    """'diverged: ...' for a FAILED run that diverged, else '': a study's cnnlab.failure, or the
    TrainingDiverged error that the tracker records as cnnlab.error on any run (trials too)."""
    failure, error = run.tags.get("cnnlab.failure", ""), run.tags.get("cnnlab.error", "")
    if run.status != "FAILED" or not (failure or error).startswith(("diverged", "TrainingDiv")):
        return ""
    return failure or "diverged: " + error.removeprefix("TrainingDiverged: ")[:200]


def _overfits(spread: float) -> Callable[[RunRecord], str | None]:
    def test(run: RunRecord) -> str | None:
        val, end = run.history["val_loss"], _curve(run, "train_loss")
        epoch, low = min(val, key=lambda p: p[1])
        start = dict(run.history.get("train_loss", [])).get(epoch, -math.inf)
        rise, bar = val[-1][1] - low, max(spread, OVERFIT_RISE * low)
        if rise <= bar or not end or start <= end[-1]:
            return None
        why = "the seeds' sd" if bar == spread else f"{OVERFIT_RISE:.0%} of the minimum"
        return (
            f"val_loss {low:.4g} at epoch {epoch} rose to {val[-1][1]:.4g} (+{rise:.4g} > "
            f"{bar:.4g}, {why}) while train_loss fell {start:.4g} -> {end[-1]:.4g}"
        )

    return test


def _underfits(run: RunRecord) -> str | None:
    train, val = _curve(run, "train_loss"), _curve(run, "val_loss")
    if len(train) < MIN_EPOCHS or train[-1] < val[-1]:
        return None
    slopes = (_slope(_tail(train)), _slope(_tail(val)))
    if max(slopes) >= 0:
        return None
    return (
        f"final train_loss {train[-1]:.4g} >= val_loss {val[-1]:.4g}, both falling over the "
        f"last {len(_tail(val))} epochs ({slopes[0]:+.3g}, {slopes[1]:+.3g} per epoch)"
    )


def _improving(run: RunRecord) -> str | None:
    val = _curve(run, "val_loss")
    best, n = val.index(min(val)) + 1, len(val)
    if best <= LATE * n:
        return None
    tail = _tail(val)
    noise = statistics.median(abs(b - a) for a, b in zip(val[-len(tail) - 1 :], tail))
    within, slope = val[-1] - min(val) <= noise, _slope(tail)
    if not within and slope >= 0:
        return None
    # A curve that has flattened (the last quarter brings little of the whole fall) is done,
    # even when its minimum happens to be late: more epochs would buy noise.
    fall, recent = val[0] - min(val), val[-len(tail) - 1] - min(val)
    if fall <= 0 or recent < STILL_FALLING * fall:
        return None
    how = f"within the noise {noise:.3g} of it" if within else f"falling {slope:+.3g} per epoch"
    share = f"the last quarter brought {recent / fall:.0%} of the fall from {val[0]:.4g}"
    return f"best epoch {best} of {n} (val_loss {min(val):.4g}), last {val[-1]:.4g}, {how}; {share}"


def _early(run: RunRecord) -> str | None:
    val = _curve(run, "val_loss")
    best, n = val.index(min(val)) + 1, len(val)
    if n < EARLY_MIN_EPOCHS or best > EARLY * n:
        return None
    return f"best epoch {best} of {n} (val_loss {min(val):.4g}), last {val[-1]:.4g}"


def _lower_lr(held: list[RunRecord], runs: list[RunRecord]) -> Proposed:
    lr = _number(held[0], "train.lr")
    if not lr:
        return NOTE
    new = _clean(lr / LR_CUT)
    text = f"Training with a {LR_CUT:g}x lower learning rate ({new:g} instead of {lr:g})"
    return {"train.lr": new}, f"{text} improves test accuracy.", dict(BETTER)


def _longer(held: list[RunRecord], runs: list[RunRecord]) -> Proposed:
    epochs = int(_number(held[0], "train.epochs") or len(_curve(held[0], "val_loss")))
    text = f"Training 2x longer ({2 * epochs} epochs instead of {epochs}) improves test accuracy."
    return {"train.epochs": 2 * epochs}, text, dict(BETTER)


def _shorter(held: list[RunRecord], runs: list[RunRecord]) -> Proposed:
    epochs = int(_number(held[0], "train.epochs") or len(_curve(held[0], "val_loss")))
    latest = max(_curve(r, "val_loss").index(min(_curve(r, "val_loss"))) + 1 for r in runs)
    new = max(1, math.ceil(STOP_MARGIN * latest))
    if new >= epochs:
        return NOTE
    text = (
        f"Training {new} epochs instead of {epochs} takes less time without losing test accuracy."
    )
    return {"train.epochs": new}, text, {"metric": "seconds", "direction": "better"}


def _regularize(held: list[RunRecord], runs: list[RunRecord]) -> Proposed:
    if _number(held[0], "model.dropout") == 0:
        text = f"Adding dropout {DROPOUT:g} to the dense head (model.dropout 0 -> {DROPOUT:g})"
        return {"model.dropout": DROPOUT}, f"{text} improves test accuracy.", dict(BETTER)
    decay = _number(held[0], "train.weight_decay")
    new = _clean(decay * DECAY_FACTOR) if decay else DECAY_START
    text = f"Raising weight decay to {new:g} (from {decay or 0:g}) improves test accuracy."
    return {"train.weight_decay": new}, text, dict(BETTER)


def _collapsed(experiment: str, variant: str, runs: list[RunRecord]) -> list[Diagnosis]:
    """Architectural: the logged map of the variant's first run holds for every seed alike."""
    params, layers = runs[0].params, int(_number(runs[0], "model.num_layers") or 0)
    chain = [int(s) for s in params.get("arch.spatial_chain", "").split(" -> ") if s.isdigit()]
    final = [int(s) for s in params.get("arch.final_map", "").split("x") if s.isdigit()][1:]
    # Entries per block (conv, then pool): one block fewer ends `per` entries earlier.
    steps = len(chain) - 1
    per = steps // layers if layers and steps >= layers and steps % layers == 0 else 0
    kernel = _number(runs[0], "model.kernel_size") or 0
    small = [s for s in (chain[:-1:per] if per else chain[:-1]) if s < kernel]  # conv inputs
    flat = len(final) == 2 and min(final) <= COLLAPSED_MAP
    if not (flat or small):
        return []
    was = "x".join(map(str, final)) or "?"
    facts = [f"final map {params['arch.final_map']}"] if flat else []
    facts += [f"a {small[0]}x{small[0]} input to a {kernel:g}x{kernel:g} kernel"] if small else []
    evidence = "; ".join(facts) + f" (spatial chain {params.get('arch.spatial_chain', '?')})"
    proposed = NOTE
    if layers > 1:
        to = f"a {chain[-1 - per]}x{chain[-1 - per]} map" if per else "a larger map"
        text = f"Removing the last conv block, so that {to} (not {was}) reaches the head,"
        proposed = {"model.num_layers": layers - 1}, f"{text} improves test accuracy.", dict(BETTER)
    return [_make("collapsed_map", experiment, variant, evidence, len(runs), len(runs), proposed)]


def _best_trial(parent: RunRecord | None, trials: list[RunRecord]) -> RunRecord | None:
    """The finished, unpruned trial best on the search's objective (val_loss unless it said)."""
    objective = parent.params.get("search.objective", "val_loss") if parent else "val_loss"
    sense = 1 if objective == "val_accuracy" else -1
    done = [t for t in trials if t.status == "FINISHED" and t.tags.get("cnnlab.pruned") != "true"]
    done = [t for t in done if math.isfinite(t.metrics.get(f"best_{objective}", math.nan))]
    return max(done, key=lambda t: sense * t.metrics[f"best_{objective}"], default=None)


def _edges(experiment: str, parent: RunRecord | None, best: RunRecord, space: dict | None):
    """One diagnosis per numeric searched key whose best value lies in an outer EDGE of its range;
    the space comes from the caller (config.toml) or the parent's search.space param."""
    if space is None and parent is not None:
        try:
            space = json.loads(parent.params.get("search.space", "{}"))
        except ValueError:  # a space too long for an MLflow param is logged cut short
            space = {}
    out = []
    for key, spec in _flat_keys(space or {}).items():  # TOML may nest "model.filters" as model
        value, log = _number(best, key), "log" in spec.get("dist", "")
        if spec.get("dist") in (None, "choice") or value is None or spec["high"] <= spec["low"]:
            continue
        if log and min(value, spec["low"]) <= 0:  # not a value a log range could have drawn
            continue
        scaled = math.log if log else float
        at = (scaled(value) - scaled(spec["low"])) / (scaled(spec["high"]) - scaled(spec["low"]))
        side = "low" if at <= EDGE else "high" if at >= 1 - EDGE else None
        if side is None:
            continue
        new, scale = _widened(spec, side, log), " in log space" if log else ""
        evidence = (f"best trial {best.name}: {key} = {value:g}, at {at:.0%} of "
                    f"[{spec['low']:g}, {spec['high']:g}]{scale}")  # fmt: skip
        change = {} if new == spec[side] else {f"search.space.{key}.{side}": new}
        evidence += f"; {side} -> {new:g}" if change else f"; {side} {new:g} cannot be widened"
        out.append(_make("search_edge", experiment, None, evidence, 1, 1, (change, "", None)))
    return out


def _widened(spec: dict, side: str, log: bool) -> float | int:
    low, high = spec["low"], spec["high"]
    half = (high - low) / 2
    if log:
        new = low / WIDEN_LOG if side == "low" else high * WIDEN_LOG
    elif side == "high":
        new = high + half
    else:  # filters, dropout, decay: a positive range stays positive, one from 0 stays there
        new = max(low - half, low / 2) if low >= 0 else low - half
    q = spec.get("q") or (1 if spec.get("int") or spec.get("dist") == "intrange" else 0)
    if q:  # still on the grid the distribution draws from: outward, to a multiple of q
        new = (math.floor if side == "low" else math.ceil)(new / q) * q
        new = q if low > 0 >= new else new
    whole = spec.get("int") or spec.get("dist") == "intrange"
    return int(round(new)) if whole else _clean(new)


def _refusals(experiment: str, trials: list[RunRecord]) -> list[Diagnosis]:
    drawn = [t for t in trials if t.status in ("FINISHED", "FAILED")]  # not running or cut
    refused = [t for t in drawn if t.tags.get("cnnlab.fail_reason") == INVALID_ARCHITECTURE]
    if not drawn or len(refused) <= REFUSED * len(drawn):
        return []
    example = f"{refused[0].name}: {refused[0].tags.get('cnnlab.error', '?')[:160]}"
    evidence = (f"{len(refused)} of {len(drawn)} samples ({len(refused) / len(drawn):.0%}) refused "
                f"as impossible architectures before training; e.g. {example}")  # fmt: skip
    return [_make("search_refusals", experiment, None, evidence, len(refused), len(drawn))]


def _undecided(record: ExperimentRecord, judged: Judged) -> Diagnosis:
    """An open hypothesis, about all the step's seeds: each open part with the seeds it needs."""
    parts = [p for p in judged.parts if p.verdict.startswith("inconclusive")]
    evidence = "; ".join(f"{p.claim}: {p.needed or p.verdict}" for p in parts) or judged.verdict
    seeds = len(record.trained)
    return _make("undecided", record.name, None, evidence, seeds, seeds)


def _readable(run: RunRecord) -> bool:
    """Long enough for the curve rules, and finite (a NaN is divergence's to report)."""
    val, train = _curve(run, "val_loss"), _curve(run, "train_loss")
    return len(val) >= MIN_EPOCHS and all(map(math.isfinite, val + train))


def _curve(run: RunRecord, key: str) -> list[float]:
    return [v for _, v in run.history.get(key, [])]


def _tail(values: list[float]) -> list[float]:
    """The last quarter of the epochs run (1 - LATE), at least two so that it has a slope."""
    return values[-max(2, math.ceil(len(values) * (1 - LATE))) :]


def _slope(values: list[float]) -> float:
    """Least-squares change per epoch: one noisy epoch does not decide a trend."""
    return statistics.linear_regression(range(len(values)), values).slope


def _number(run: RunRecord, key: str) -> float | None:
    try:
        return float(run.params[key])
    except (KeyError, ValueError):
        return None


def _clean(value: float) -> float:
    """0.0001 rather than 0.00010000000000000002 in a step file."""
    return float(f"{value:.6g}")


def _seed(run: RunRecord) -> str:
    seed = run.tags.get(SEED_TAG)
    return f"seed {seed}" if seed else run.name
