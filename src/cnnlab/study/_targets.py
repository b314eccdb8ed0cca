"""What a study step compares with: its reference, and the parts of its hypothesis, resolved
against the whole study folder (a step may name any step, or one of their variants).

    resolve_references(steps, index)   # sets steps[index].reference and .expect
    find_step(steps, "architecture", "--only", folder)   # by file stem, or without its number

A reference is "variant" (of the step itself), "step" (its selected variant) or "step:variant";
without one, a step is compared with the previous step's selected variant (the first step: with
its own first variant). See study._steps for the step file's `[step]` table.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.config import ConfigError
from cnnlab.reports import DIRECTIONS, METRICS, SENSES

if TYPE_CHECKING:
    from cnnlab.study._steps import Step

EXPECT_KEYS = ("metric", "direction", "reference", "variant", "min_difference", "sense")


@dataclass(frozen=True)
class Target:
    """What a comparison is made with: a step's variant, or (variant None) its selected one."""

    step: str
    variant: str | None


@dataclass
class Expectation:
    """One part of a hypothesis: the subject's `metric` against the reference's."""

    metric: str  # a key of METRICS, or a logged metric's name with a sense
    direction: str  # a key of DIRECTIONS
    reference: Target
    variant: str | None  # the subject; None = the step's selected variant
    min_difference: float  # the margin, in the metric's units
    sense: str | None = None  # "higher" / "lower" is better; None: METRICS knows


def find_step(steps: list[Step], name: str, where: str, folder: Path) -> Step:
    names = [s.name for s in steps]
    matches = [s for s in steps if s.name == name or s.name.split("-", 1)[-1] == name]
    if not matches:
        hint = difflib.get_close_matches(name, names, n=1)
        close = f" (did you mean {hint[0]}?)" if hint else ""
        raise ConfigError(f"{where}: no step {name!r} in {folder}{close}")
    return matches[0]


def _target(steps: list[Step], index: int, spec: str, where: str) -> Target:
    """ "variant" of this step, "step" (its selected variant) or "step:variant"."""
    step = steps[index]
    own = [v.name for v in step.variants]
    if ":" not in spec and spec in own and step.kind == "train":
        return Target(step.name, spec)
    name, _, variant = spec.partition(":")
    other = find_step(steps, name, where, step.path.parent)
    if other is step and not variant:
        raise ConfigError(f"{where}: {spec!r} names the step itself; name one of its variants")
    if variant and variant not in [v.name for v in other.variants]:
        known = ", ".join(v.name for v in other.variants)
        raise ConfigError(f"{where}: step {other.name} has no variant {variant!r} ({known})")
    return Target(other.name, variant or None)


def resolve_references(steps: list[Step], index: int) -> None:
    """Sets steps[index].reference and .expect from what its file wrote, checked against the
    whole folder (the steps before it, and after)."""
    step = steps[index]
    where = f"{step.path}: step.reference"
    if step.reference_spec:
        step.reference = _target(steps, index, step.reference_spec, where)
    elif index > 0:
        step.reference = Target(steps[index - 1].name, None)
    elif len(step.variants) > 1:
        step.reference = Target(step.name, step.variants[0].name)
    spec = step.expect_spec
    where = f"{step.path}: step.expect"
    if isinstance(spec, dict):
        step.expect = [_expectation(steps, index, spec, where)]
    elif spec is not None:
        step.expect = [_expectation(steps, index, p, f"{where}[{i}]") for i, p in enumerate(spec)]


def _expectation(steps: list[Step], index: int, spec: dict[str, Any], where: str) -> Expectation:
    """One part, checked; `where` names it in errors (step.expect or step.expect[i])."""
    step = steps[index]
    unknown = [k for k in spec if k not in EXPECT_KEYS]
    if unknown:
        hint = difflib.get_close_matches(unknown[0], EXPECT_KEYS, n=1)
        close = f" (did you mean {hint[0]}?)" if hint else ""
        raise ConfigError(f"{where}.{unknown[0]}: unknown key{close}")
    metric, direction = spec.get("metric", "test_accuracy"), spec.get("direction")
    sense = _sense(metric, spec.get("sense"), where)
    if direction not in DIRECTIONS:
        options = ", ".join(DIRECTIONS)
        raise ConfigError(f"{where}.direction: expected one of {options}, got {direction!r}")
    margin = spec.get("min_difference", 0.0)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or margin < 0:
        raise ConfigError(f"{where}.min_difference: expected a number >= 0, got {margin!r}")
    if direction == "same" and margin <= 0:
        raise ConfigError(f"{where}.min_difference: direction 'same' needs a margin > 0")
    variant = spec.get("variant")
    if variant is not None and variant not in [v.name for v in step.variants]:
        raise ConfigError(f"{where}.variant: step {step.name} has no variant {variant!r}")
    ref = spec.get("reference")
    if ref is not None and not isinstance(ref, str):
        raise ConfigError(f"{where}.reference: expected a string, got {ref!r}")
    target = _target(steps, index, ref, f"{where}.reference") if ref else step.reference
    if target is None:
        raise ConfigError(f"{where}.reference: the first step needs a reference to compare with")
    return Expectation(metric, direction, target, variant, float(margin), sense)


def _sense(metric: Any, sense: Any, where: str) -> str | None:
    """None for a metric of METRICS (its sense is known); else the `sense` it must give."""
    if metric in METRICS:
        if sense is not None:
            raise ConfigError(
                f"{where}.sense: {metric} is one of METRICS, whose better sense is known; "
                "give sense only for another logged metric"
            )
        return None
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"{where}.metric: expected a metric's name, got {metric!r}")
    if sense is None:
        hint = difflib.get_close_matches(metric, METRICS, n=1)
        close = f" (did you mean {hint[0]}?)" if hint else ""
        raise ConfigError(
            f"{where}.metric: expected one of {', '.join(METRICS)}, or a logged metric with "
            f'sense = "higher" or "lower", got {metric!r}{close}'
        )
    if sense not in SENSES:
        raise ConfigError(f"{where}.sense: expected higher or lower, got {sense!r}")
    return sense
