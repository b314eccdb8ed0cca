"""What every config section is built on: the error, the range checks, and the vocabulary.

The vocabulary (the names a value may take) lives here, in the lowest layer, so that the
sections check their values without importing the code that acts on them: cnnlab.data imports
its dataset names from here, and refuses to load if its registry says otherwise.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Literal


class ConfigError(ValueError):
    """A config that cannot be used; the message is one line naming where and what."""


# Range checks that types cannot express: (test, what is expected); each section names its own
# next to its fields, and runs them where it is made, so no invalid section exists anywhere.
_POSITIVE = (lambda v: v > 0, "> 0")
_AT_LEAST_0 = (lambda v: v >= 0, ">= 0")
_FRACTION = (lambda v: 0 <= v < 1, "in [0, 1)")


class _Checked:
    """A config section that checks its values when made (and when dataclasses.replace remakes
    it): a failed check raises ConfigError naming `section.key`, expected and actual."""

    SECTION: ClassVar[str] = ""
    CHECKS: ClassVar[dict[str, tuple[Any, str]]] = {}  # field -> (test, what is expected)

    def __post_init__(self) -> None:
        check_values(self, self.SECTION, self.CHECKS)
        self._check_together()

    def _check_together(self) -> None:
        """Checks that involve several fields; none by default."""


def check_values(section_obj: Any, section: str, checks: dict[str, tuple[Any, str]]) -> None:
    """Each field against its range check; a list is checked item by item; NaN fails every
    comparison and infinity is refused, so neither slips through."""
    for f in dataclasses.fields(section_obj):
        value = getattr(section_obj, f.name)
        if isinstance(value, dict):
            continue  # a search space: cnnlab.search checks its distributions
        rule = checks.get(f.name)
        values = value if isinstance(value, list) else [value]
        try:
            ok = rule is None or all(rule[0](v) for v in values)
        except TypeError:  # a value of the wrong type, made in code rather than parsed
            ok = False
        if not ok:
            raise ConfigError(f"{section}.{f.name}: expected {rule[1]}, got {value!r}")
        if any(isinstance(v, float) and math.isinf(v) for v in values):
            raise ConfigError(f"{section}.{f.name}: expected a finite number, got {value!r}")


OptimizerName = Literal["sgd", "adam", "adamw"]
SchedulerName = Literal["none", "step", "cosine", "onecycle", "plateau"]
ActivationName = Literal["relu", "gelu", "silu", "leaky_relu", "tanh"]
DeviceName = Literal["auto", "cpu", "cuda", "mps"]
PrecisionName = Literal["auto", "fp32", "bf16"]

# The built-in datasets, in the order `cnnlab data --list` shows them; cnnlab.data.REGISTRY
# holds one entry for each, in this order, and raises at import if it does not.
BUILT_IN_DATASETS: tuple[str, ...] = ("fashion-mnist", "mnist", "kmnist", "cifar-10")
FOLDER = "folder"  # the `data.dataset` value that reads `data.path` instead of a built-in
DATASET_NAMES: tuple[str, ...] = (*BUILT_IN_DATASETS, FOLDER)  # what `data.dataset` accepts
