"""The rules read in one variant's runs, seed by seed: a test per run (the evidence in words,
or None) and the change each proposes when it holds on most seeds. Their thresholds and their
rules in words: advisor._diagnosis.

    diverges(run)            # "train_loss 3.1e+04 in epoch 3, ..." or None
    lower_lr(held, runs)     # ({"train.lr": 0.0001}, hypothesis, expectation)
    collapsed(experiment, variant, runs)   # architectural: [Diagnosis] or []
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

from cnnlab.advisor._diagnosis import (
    BETTER,
    COLLAPSED_MAP,
    DECAY_FACTOR,
    DECAY_START,
    DIVERGE_FACTOR,
    DROPOUT,
    EARLY,
    EARLY_MIN_EPOCHS,
    LATE,
    LR_CUT,
    MIN_EPOCHS,
    NOTE,
    OVERFIT_RISE,
    STILL_FALLING,
    STOP_MARGIN,
    Diagnosis,
    Proposed,
    clean,
    curve,
    make,
    number,
)
from cnnlab.reports import RunRecord
from cnnlab.tracking.tags import ERROR_TAG, FAILURE_TAG


def diverges(run: RunRecord) -> str | None:
    if divergence_failure(run):
        logged = len(curve(run, "train_loss"))
        return f"{run.status}, {divergence_failure(run)}, after {logged} epoch(s) logged"
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


def divergence_failure(run: RunRecord) -> str:
    """'diverged: ...' for a FAILED run that diverged, else '': a study's cnnlab.failure, or the
    TrainingDiverged error that the tracker records as cnnlab.error on any run (trials too)."""
    failure, error = run.tags.get(FAILURE_TAG, ""), run.tags.get(ERROR_TAG, "")
    if run.status != "FAILED" or not (failure or error).startswith(("diverged", "TrainingDiv")):
        return ""
    return failure or "diverged: " + error.removeprefix("TrainingDiverged: ")[:200]


def overfits(spread: float) -> Callable[[RunRecord], str | None]:
    def test(run: RunRecord) -> str | None:
        val, end = run.history["val_loss"], curve(run, "train_loss")
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


def underfits(run: RunRecord) -> str | None:
    train, val = curve(run, "train_loss"), curve(run, "val_loss")
    if len(train) < MIN_EPOCHS or train[-1] < val[-1]:
        return None
    slopes = (_slope(_tail(train)), _slope(_tail(val)))
    if max(slopes) >= 0:
        return None
    return (
        f"final train_loss {train[-1]:.4g} >= val_loss {val[-1]:.4g}, both falling over the "
        f"last {len(_tail(val))} epochs ({slopes[0]:+.3g}, {slopes[1]:+.3g} per epoch)"
    )


def improving(run: RunRecord) -> str | None:
    val = curve(run, "val_loss")
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


def early(run: RunRecord) -> str | None:
    val = curve(run, "val_loss")
    best, n = val.index(min(val)) + 1, len(val)
    if n < EARLY_MIN_EPOCHS or best > EARLY * n:
        return None
    return f"best epoch {best} of {n} (val_loss {min(val):.4g}), last {val[-1]:.4g}"


def lower_lr(held: list[RunRecord], runs: list[RunRecord]) -> Proposed:
    lr = number(held[0], "train.lr")
    if not lr:
        return NOTE
    new = clean(lr / LR_CUT)
    text = f"Training with a {LR_CUT:g}x lower learning rate ({new:g} instead of {lr:g})"
    return {"train.lr": new}, f"{text} improves test accuracy.", dict(BETTER)


def longer(held: list[RunRecord], runs: list[RunRecord]) -> Proposed:
    epochs = int(number(held[0], "train.epochs") or len(curve(held[0], "val_loss")))
    text = f"Training 2x longer ({2 * epochs} epochs instead of {epochs}) improves test accuracy."
    return {"train.epochs": 2 * epochs}, text, dict(BETTER)


def shorter(held: list[RunRecord], runs: list[RunRecord]) -> Proposed:
    epochs = int(number(held[0], "train.epochs") or len(curve(held[0], "val_loss")))
    latest = max(curve(r, "val_loss").index(min(curve(r, "val_loss"))) + 1 for r in runs)
    new = max(1, math.ceil(STOP_MARGIN * latest))
    if new >= epochs:
        return NOTE
    text = (
        f"Training {new} epochs instead of {epochs} takes less time without losing test accuracy."
    )
    return {"train.epochs": new}, text, {"metric": "seconds", "direction": "better"}


def regularize(held: list[RunRecord], runs: list[RunRecord]) -> Proposed:
    if number(held[0], "model.dropout") == 0:
        text = f"Adding dropout {DROPOUT:g} to the dense head (model.dropout 0 -> {DROPOUT:g})"
        return {"model.dropout": DROPOUT}, f"{text} improves test accuracy.", dict(BETTER)
    decay = number(held[0], "train.weight_decay")
    new = clean(decay * DECAY_FACTOR) if decay else DECAY_START
    text = f"Raising weight decay to {new:g} (from {decay or 0:g}) improves test accuracy."
    return {"train.weight_decay": new}, text, dict(BETTER)


def collapsed(experiment: str, variant: str, runs: list[RunRecord]) -> list[Diagnosis]:
    """Architectural: the logged map of the variant's first run holds for every seed alike."""
    params, layers = runs[0].params, int(number(runs[0], "model.num_layers") or 0)
    chain = [int(s) for s in params.get("arch.spatial_chain", "").split(" -> ") if s.isdigit()]
    final = [int(s) for s in params.get("arch.final_map", "").split("x") if s.isdigit()][1:]
    # Entries per block (conv, then pool): one block fewer ends `per` entries earlier.
    steps = len(chain) - 1
    per = steps // layers if layers and steps >= layers and steps % layers == 0 else 0
    kernel = number(runs[0], "model.kernel_size") or 0
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
    return [make("collapsed_map", experiment, variant, evidence, len(runs), len(runs), proposed)]


def readable(run: RunRecord) -> bool:
    """Long enough for the curve rules, and finite (a NaN is divergence's to report)."""
    val, train = curve(run, "val_loss"), curve(run, "train_loss")
    return len(val) >= MIN_EPOCHS and all(map(math.isfinite, val + train))


def _tail(values: list[float]) -> list[float]:
    """The last quarter of the epochs run (1 - LATE), at least two so that it has a slope."""
    return values[-max(2, math.ceil(len(values) * (1 - LATE))) :]


def _slope(values: list[float]) -> float:
    """Least-squares change per epoch: one noisy epoch does not decide a trend."""
    return statistics.linear_regression(range(len(values)), values).slope
