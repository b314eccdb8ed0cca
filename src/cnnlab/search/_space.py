"""A search space as plain data: dotted config keys -> Hyperopt-style distributions.

    [search.space]
    "model.filters" = { dist = "quniform", low = 16, high = 128, q = 8, int = true }
    "train.lr" = { dist = "loguniform", low = 1e-4, high = 1e-1 }
    "model.activation" = { dist = "choice", options = ["relu", "gelu"] }

Bounds are values, never logs (unlike hp.loguniform). `int = true` casts samples to integers.
quniform and qloguniform round to multiples of q, as Hyperopt does; intrange draws integers
low..high, both included. Every key is checked through the same override path as --set.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnlab.config import (
    MODEL_CONFIGS,
    ConfigError,
    apply_override,
    from_dict,
    override_text,
    parse_override,
)

DISTRIBUTIONS = ("uniform", "quniform", "loguniform", "qloguniform", "intrange", "choice")
_FIELDS = ("dist", "low", "high", "q", "int", "options")
_NEEDS = {
    "uniform": ("low", "high"),
    "quniform": ("low", "high", "q"),
    "loguniform": ("low", "high"),
    "qloguniform": ("low", "high", "q"),
    "intrange": ("low", "high"),
    "choice": ("options",),
}


@dataclass(frozen=True)
class Dimension:
    key: str  # dotted config key, e.g. "model.filters"
    dist: str  # one of DISTRIBUTIONS
    low: float = 0.0  # lower bound, a value (not a log)
    high: float = 0.0  # upper bound; included by intrange and by rounding to q
    q: float = 0.0  # step of quniform / qloguniform
    integer: bool = False  # cast samples to int
    options: tuple[Any, ...] = ()  # choice's values, any TOML values

    @property
    def log(self) -> bool:
        return self.dist in ("loguniform", "qloguniform")

    def finish(self, value: Any) -> Any:
        """A raw draw (uniform or log-uniform float, int, or choice) -> the config value."""
        if self.dist == "choice":
            return _plain(value)
        if self.q:
            value = round(float(value) / self.q) * self.q
        if self.integer or self.dist == "intrange":
            return int(round(float(value)))
        return float(value)

    def to_dict(self) -> dict[str, Any]:
        if self.dist == "choice":
            return {"dist": "choice", "options": list(self.options)}
        out: dict[str, Any] = {"dist": self.dist, "low": self.low, "high": self.high}
        if self.q:
            out["q"] = self.q
        if self.integer:
            out["int"] = True
        return out


Space = list[Dimension]


def parse_space(table: dict[str, Any], base: dict[str, Any]) -> Space:
    """The [search.space] table -> Dimensions, each checked against the config `base` (raw)."""
    if not table:
        raise ConfigError(
            'search.space: empty; add e.g. "model.filters" = '
            '{ dist = "quniform", low = 16, high = 128, q = 8, int = true }'
        )
    space = [_dimension(key, spec) for key, spec in flat_keys(table).items()]
    for dim in space:
        _check_key(dim, base)
    return space


def flat_keys(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Accepts `"model.filters" = {...}` and also unquoted `model.filters = {...}` (nested)."""
    out: dict[str, Any] = {}
    for key, spec in table.items():
        name = f"{prefix}{key}"
        if isinstance(spec, dict) and "dist" not in spec and name.count(".") == 0:
            out.update(flat_keys(spec, f"{name}."))
        else:
            out[name] = spec
    return out


def _dimension(key: str, spec: Any) -> Dimension:
    where = f"search.space.{key}"
    if not isinstance(spec, dict):
        raise ConfigError(
            f'{where}: expected a table such as {{ dist = "uniform", low = 0, '
            f"high = 1 }}, got {spec!r}"
        )
    dist = spec.get("dist")
    if dist not in DISTRIBUTIONS:
        near = difflib.get_close_matches(str(dist), DISTRIBUTIONS, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ConfigError(
            f"{where}: unknown distribution {dist!r}{hint}; expected one of "
            f"{', '.join(DISTRIBUTIONS)}"
        )
    for name in spec:
        if name not in _FIELDS or (name not in _NEEDS[dist] and name not in ("dist", "int")):
            raise ConfigError(
                f"{where}: {dist} takes {', '.join(_NEEDS[dist])} (and int), got {name!r}"
            )
    missing = [n for n in _NEEDS[dist] if n not in spec]
    if missing:
        raise ConfigError(f"{where}: {dist} needs {' and '.join(missing)}")
    if not isinstance(spec.get("int", False), bool):
        raise ConfigError(f"{where}: int: expected true or false, got {spec['int']!r}")
    if dist == "choice":
        return _choice(where, key, spec["options"])
    return _numeric(where, key, dist, spec)


def _choice(where: str, key: str, options: Any) -> Dimension:
    if not isinstance(options, list):
        raise ConfigError(f"{where}: options: expected a list, got {options!r}")
    if not options:
        raise ConfigError(f"{where}: choice needs at least one option, got []")
    return Dimension(key, "choice", options=tuple(options))


def _numeric(where: str, key: str, dist: str, spec: dict[str, Any]) -> Dimension:
    bounds = {n: spec[n] for n in _NEEDS[dist]}
    for name, value in bounds.items():
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value):
            raise ConfigError(f"{where}: {name}: expected a finite number, got {value!r}")
    low, high, q = bounds["low"], bounds["high"], bounds.get("q", 0.0)
    if not low < high:
        raise ConfigError(f"{where}: expected low < high, got low={low!r}, high={high!r}")
    if "q" in bounds and not q > 0:
        raise ConfigError(f"{where}: q: expected > 0, got {q!r}")
    if dist in ("loguniform", "qloguniform") and not low > 0:
        raise ConfigError(f"{where}: {dist} needs low > 0 (it samples the log), got low={low!r}")
    if dist == "intrange" and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(f"{where}: intrange needs integer bounds, got {low!r}, {high!r}")
    integer = bool(spec.get("int", False)) or dist == "intrange"
    return Dimension(key, dist, float(low), float(high), float(q), integer)


def _check_key(dim: Dimension, base: dict[str, Any]) -> None:
    """Applies the extreme values through --set's path; only errors naming this key count.

    A value may still fail with another key (more paddings than blocks); that makes an invalid
    trial, not a bad space.
    """
    where = f"search.space.{dim.key}"
    if dim.key.startswith("search."):
        raise ConfigError(f"{where}: the search section cannot be searched")
    values = dim.options if dim.dist == "choice" else extremes(dim)
    for value in values:
        raw = copy.deepcopy(base)
        try:
            apply_to_resolved(raw, [override_text(dim.key, value)])
            from_dict(raw)
        except ConfigError as exc:
            text = str(exc).removeprefix("--set ")
            section = dim.key.split(".")[0]
            if text.startswith(dim.key) or f"[{section}]" in text or "--set" in str(exc):
                hint = " (add int = true)" if "expected an integer" in text else ""
                raise ConfigError(f"{where}: {text}{hint}") from None


def extremes(dim: Dimension) -> list[Any]:
    return [dim.finish(dim.low), dim.finish(dim.high)]


def sample(space: Space, rng: np.random.Generator) -> dict[str, Any]:
    """One random point, distributed as Hyperopt's rand.suggest would draw it."""
    out: dict[str, Any] = {}
    for dim in space:
        if dim.dist == "choice":
            raw: Any = dim.options[int(rng.integers(len(dim.options)))]
        elif dim.dist == "intrange":
            raw = int(rng.integers(int(dim.low), int(dim.high) + 1))
        elif dim.log:
            raw = math.exp(rng.uniform(math.log(dim.low), math.log(dim.high)))
        else:
            raw = rng.uniform(dim.low, dim.high)
        out[dim.key] = dim.finish(raw)
    return out


def overrides(params: dict[str, Any]) -> list[str]:
    """A trial's sample as --set items; `cnnlab train --set ...` reruns the trial."""
    return [override_text(key, value) for key, value in params.items()]


def space_to_dict(space: Space) -> dict[str, dict[str, Any]]:
    return {dim.key: dim.to_dict() for dim in space}


def dimensions_from_dict(table: dict[str, dict[str, Any]]) -> Space:
    """space_to_dict's output (a search's parent run logs it) -> Dimensions again. Keys are not
    checked against a config: the search already did, and a report has no config to hand."""
    return [_dimension(key, spec) for key, spec in table.items()]


def _plain(value: Any) -> Any:
    """Tuples (from Hyperopt's pyll) back to lists, numpy scalars to Python ones."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def apply_to_resolved(raw: dict[str, Any], items: list[str]) -> None:
    """Apply --set items to a resolved config (to_dict of a Config), as a search trial does.

    A resolved [model] table holds every field of its family, defaults included, so an item
    that switches model.name would leave fields the new family lacks. The switch instead starts
    from the new family's defaults and keeps the settings made on the old model (values off its
    family's defaults) that the new family also has, e.g. a chosen activation.
    """
    for item in items:
        (section, key), value = parse_override(item)
        model = raw.get("model", {})
        if (section, key) == ("model", "name") and value != model.get("name", "cnn"):
            raw["model"] = _carried_settings(model, value)
    for item in items:
        apply_override(raw, item)


def _carried_settings(model: dict[str, Any], family: Any) -> dict[str, Any]:
    old_cls = MODEL_CONFIGS.get(model.get("name", "cnn"))
    new_cls = MODEL_CONFIGS.get(family)
    if old_cls is None or new_cls is None:
        return {}  # from_dict names the unknown family
    defaults = dataclasses.asdict(old_cls())
    shared = {f.name for f in dataclasses.fields(new_cls)} - {"name"}
    return {k: v for k, v in model.items() if k in shared and v != defaults.get(k)}
