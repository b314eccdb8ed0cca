"""`cnnlab tune --check`: what a space builds, by sampling it without training.

    report = check_space(cfg, samples=1000)
    report.invalid_share, report.small_share, report.inert_keys

A sample is invalid when its config or architecture is refused (the same checks a trial makes
first); "small" when a CNN's last feature map is 2x2 or smaller; a model.* key is inert when
changing it alone leaves the built model identical (same layers, same parameter count).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnlab.config import CnnConfig, Config, ConfigError
from cnnlab.data import InfoCache
from cnnlab.models import check_architecture, create_model, plan_cnn
from cnnlab.search._objective import trial_config
from cnnlab.search._space import Space, extremes, sample

_SMALL = 2  # a final map this size or smaller, both sides, leaves little for the head


@dataclass
class SpaceReport:
    samples: int
    invalid: int  # refused samples
    small: int  # valid samples whose final map is <= 2x2
    inert_keys: list[str] = field(default_factory=list)  # model.* keys that change nothing
    errors: Counter = field(default_factory=Counter)  # refusal message -> count

    @property
    def invalid_share(self) -> float:
        return self.invalid / self.samples

    @property
    def small_share(self) -> float:
        return self.small / self.samples

    def format(self) -> str:
        lines = [
            f"sampled {self.samples} configurations, none trained:",
            f"  invalid (refused before training): {self.invalid_share:.1%} ({self.invalid})",
            f"  final map <= 2x2: {self.small_share:.1%} ({self.small})",
            "  keys that do not change the built model: " + (", ".join(self.inert_keys) or "none"),
        ]
        lines += [f"  {n:>5} x {error}" for error, n in self.errors.most_common(3)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "invalid": self.invalid,
            "invalid_share": self.invalid_share,
            "small_maps": self.small,
            "small_share": self.small_share,
            "inert_keys": self.inert_keys,
            "top_errors": [{"error": e, "count": n} for e, n in self.errors.most_common(3)],
        }


def check_space(cfg: Config, space: Space, samples: int = 1000) -> SpaceReport:
    rng = np.random.default_rng(cfg.search.seed)
    report = SpaceReport(samples, 0, 0)
    valid: list[dict[str, Any]] = []
    infos = InfoCache()
    for _ in range(samples):
        params = sample(space, rng)
        try:
            trial = _checked(cfg, params, infos)
        except ConfigError as exc:
            report.invalid += 1
            report.errors[str(exc)] += 1
            continue
        valid.append(params)
        report.small += _is_small(trial, infos)
    if valid:
        report.inert_keys = _inert_keys(cfg, space, valid[0], rng, infos)
    return report


def require_some_valid(cfg: Config, space: Space, samples: int = 200) -> None:
    """A space whose every sample is refused is bad input, found before any run exists."""
    rng = np.random.default_rng(cfg.search.seed)
    errors: Counter = Counter()
    infos = InfoCache()
    for _ in range(samples):
        try:
            _checked(cfg, sample(space, rng), infos)
            return  # one valid sample is enough
        except ConfigError as exc:
            errors[str(exc)] += 1
    (error, _), *_ = errors.most_common(1)
    raise ConfigError(
        f"search.space: all {samples} sampled configurations are invalid, e.g. {error}"
    )


def _checked(cfg: Config, params: dict[str, Any], infos: InfoCache) -> Config:
    trial = trial_config(cfg, params)
    info = infos(trial.data)
    check_architecture(trial.model, info.input_shape, info.num_classes)
    return trial


def _is_small(cfg: Config, infos: InfoCache) -> bool:
    if not isinstance(cfg.model, CnnConfig):
        return False
    final = plan_cnn(cfg.model, infos(cfg.data).input_shape)[-1].out_size
    return max(final) <= _SMALL


def _inert_keys(
    cfg: Config, space: Space, params: dict[str, Any], rng, infos: InfoCache
) -> list[str]:
    """Rebuilds the model with one key changed at a time, the rest held at a valid sample."""
    inert = []
    for dim in space:
        if not dim.key.startswith("model."):
            continue  # data and train keys change training, never the model
        candidates = list(dim.options) if dim.dist == "choice" else extremes(dim)
        candidates += [sample([dim], rng)[dim.key] for _ in range(3)]
        signatures = set()
        tried = 0
        for value in _distinct([params[dim.key], *candidates]):
            try:
                trial = _checked(cfg, {**params, dim.key: value}, infos)
            except ConfigError:
                continue
            tried += 1
            signatures.add(_signature(trial, infos))
        if tried >= 2 and len(signatures) == 1:
            inert.append(dim.key)
    return inert


def _signature(cfg: Config, infos: InfoCache) -> tuple[str, int]:
    info = infos(cfg.data)
    model = create_model(cfg.model, info.input_shape, info.num_classes)
    return repr(model), sum(p.numel() for p in model.parameters())


def _distinct(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out
