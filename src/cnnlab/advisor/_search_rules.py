"""The rules read in a search step: its best trial stands for it (the Tuning Playbook judges a
search by its best point), a best value at the edge of the space widens that side, and a space
whose samples are mostly refused as impossible architectures is a note.

    best = best_trial(parent, trials)           # finished, unpruned, best on the objective
    edges(experiment, parent, best, space)      # [Diagnosis] per searched key at an edge
    refusals(experiment, trials)                # [Diagnosis] when most samples were refused
"""

from __future__ import annotations

import json
import math

from cnnlab.advisor._diagnosis import EDGE, REFUSED, WIDEN_LOG, Diagnosis, clean, make, number
from cnnlab.reports import RunRecord
from cnnlab.search import INVALID_ARCHITECTURE, flat_keys
from cnnlab.tracking.tags import ERROR_TAG, FAIL_REASON_TAG, PRUNED_TAG


def best_trial(parent: RunRecord | None, trials: list[RunRecord]) -> RunRecord | None:
    """The finished, unpruned trial best on the search's objective (val_loss unless it said)."""
    objective = parent.params.get("search.objective", "val_loss") if parent else "val_loss"
    sense = 1 if objective == "val_accuracy" else -1
    done = [t for t in trials if t.status == "FINISHED" and t.tags.get(PRUNED_TAG) != "true"]
    done = [t for t in done if math.isfinite(t.metrics.get(f"best_{objective}", math.nan))]
    return max(done, key=lambda t: sense * t.metrics[f"best_{objective}"], default=None)


def edges(experiment: str, parent: RunRecord | None, best: RunRecord, space: dict | None):
    """One diagnosis per numeric searched key whose best value lies in an outer EDGE of its range;
    the space comes from the caller (config.toml) or the parent's search.space param."""
    if space is None and parent is not None:
        try:
            space = json.loads(parent.params.get("search.space", "{}"))
        except ValueError:  # a space too long for an MLflow param is logged cut short
            space = {}
    out = []
    for key, spec in flat_keys(space or {}).items():  # TOML may nest "model.filters" as model
        value, log = number(best, key), "log" in spec.get("dist", "")
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
        out.append(make("search_edge", experiment, None, evidence, 1, 1, (change, "", None)))
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
    return int(round(new)) if whole else clean(new)


def refusals(experiment: str, trials: list[RunRecord]) -> list[Diagnosis]:
    drawn = [t for t in trials if t.status in ("FINISHED", "FAILED")]  # not running or cut
    refused = [t for t in drawn if t.tags.get(FAIL_REASON_TAG) == INVALID_ARCHITECTURE]
    if not drawn or len(refused) <= REFUSED * len(drawn):
        return []
    example = f"{refused[0].name}: {refused[0].tags.get(ERROR_TAG, '?')[:160]}"
    evidence = (f"{len(refused)} of {len(drawn)} samples ({len(refused) / len(drawn):.0%}) refused "
                f"as impossible architectures before training; e.g. {example}")  # fmt: skip
    return [make("search_refusals", experiment, None, evidence, len(refused), len(drawn))]
