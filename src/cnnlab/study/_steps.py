"""A study folder's step files, parsed and checked before anything runs.

A step is one TOML file: an ordinary config (sections data, model, train, tracking, search)
plus a `[step]` table that says how to run it and what its author expects:

    [step]
    kind = "train"                     # train: one run per variant and seed; tune: one search
    description = "What this step asks, in a sentence."
    base = "../configs/fast.toml"      # optional: a config file the step's sections overlay
    variants = [{ name = "bn", set = ["model.batchnorm=true"] }]   # runs; default one run
    grid = { "train.optimizer" = ["adam", "adamw"] }               # or every combination
    seeds = 3                          # or [1, 2, 3]: each variant once per seed (train.seed)
    reference = "3-architecture"       # compare with: a step (its selected variant),
                                       # "step:variant", or a variant of this step
    published = { setting = "...", accuracy = "79.88%" }           # the study's own figures
    hypothesis = "A 6x6 map beats a 2x2 map."                      # free text
    expect = { metric = "test_accuracy", direction = "better", reference = "2-extended-training" }

Without `reference` a step is compared with the previous step's selected variant (the first
step: with its own first variant). `expect` may also name the `variant` it is about (default:
the step's selected variant) and a `min_difference` (the margin, in the metric's units).

A hypothesis that claims several things gives one table per claim, each judged; the hypothesis
holds only when every part does:

    expect = [
      { metric = "test_accuracy", direction = "better", reference = "3-architecture" },
      { metric = "seconds", direction = "better", reference = "3-architecture" },
    ]

`metric` is one of the reports' METRICS (whose better sense is known), or any metric the runs
log with `sense = "higher"` or `"lower"` saying which way is better.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.config import (
    Config,
    ConfigError,
    apply_override,
    from_dict,
    merge_sections,
    override_text,
    read_config_file,
    read_toml,
    to_toml,
)
from cnnlab.reports import SELECTIONS
from cnnlab.study._targets import Expectation, Target, find_step, resolve_references

STEP_KEYS = (
    "kind",
    "description",
    "base",
    "variants",
    "grid",
    "seeds",
    "reference",
    "published",
    "hypothesis",
    "expect",
    "select",
)
# --quick: small enough for the whole study to run in minutes on a 2-core laptop.
QUICK = {
    "train.epochs": 2,  # at most
    "train.steps_per_epoch": 15,  # at most, when the step uses fixed-size epochs
    "data.train_limit": 3000,
    "data.val_fraction": 0.02,  # 1,200 validation images
}


@dataclass
class Variant:
    name: str
    overrides: list[str] = field(default_factory=list)


@dataclass
class Step:
    path: Path
    kind: str
    description: str
    variants: list[Variant]
    published: dict[str, str]
    raw: dict[str, Any]  # the config sections, base merged in
    seeds: int | list[int] | None = None  # as written; None = one run at the config's seed
    reference_spec: str | None = None
    hypothesis: str = ""
    expect_spec: dict[str, Any] | list[dict[str, Any]] | None = None  # one table or a list
    reference: Target | None = None  # resolved by load_steps, which sees the whole folder
    expect: list[Expectation] = field(default_factory=list)  # every part; [] = no claim
    select: str = "val_loss"  # what picks the step's variant: a key of reports.SELECTIONS

    @property
    def name(self) -> str:
        return self.path.stem

    def seed_list(self, variant: Variant, override: int | list[int] | None = None) -> list[int]:
        """The train.seed of each run of `variant`; a count starts at the variant's own seed."""
        seeds = self.seeds if override is None or self.kind == "tune" else override
        if isinstance(seeds, list):
            return list(seeds)
        first = self.config(variant, quick=False).train.seed
        return [first + i for i in range(seeds or 1)]

    def config(self, variant: Variant, quick: bool, seed: int | None = None) -> Config:
        raw = json.loads(json.dumps(self.raw))  # a deep copy of plain data
        for item in variant.overrides:
            apply_override(raw, item)
        if quick:
            _shrink(raw)
        if seed is not None:
            raw.setdefault("train", {})["seed"] = seed
        return from_dict(raw)


def load_steps(folder: Path, only: str | None = None) -> list[Step]:
    """Parses and checks every step (all configs built) before anything runs."""
    paths = sorted(folder.glob("*.toml"))
    if not paths:
        raise ConfigError(f"{folder}: no step files (*.toml) in the study folder")
    steps = [load_step(p) for p in paths]
    for index in range(len(steps)):
        resolve_references(steps, index)
    if only is not None:
        steps = [find_step(steps, only, "--only", folder)]
    for step in steps:
        for variant in step.variants:
            step.config(variant, quick=False)
    return steps


def load_step(path: Path) -> Step:
    raw = read_toml(path)
    table = raw.pop("step", {})
    unknown = [k for k in table if k not in STEP_KEYS]
    if unknown:
        hint = difflib.get_close_matches(unknown[0], STEP_KEYS, n=1)
        close = f" (did you mean step.{hint[0]}?)" if hint else ""
        raise ConfigError(f"{path}: step.{unknown[0]}: unknown key{close}")
    kind = table.get("kind", "train")
    if kind not in ("train", "tune"):
        raise ConfigError(f"{path}: step.kind: expected train or tune, got {kind!r}")
    if "base" in table:
        raw = merge_sections(read_config_file((path.parent / table["base"]).resolve()), raw)
    variants = _variants(path, table)
    if kind == "tune" and len(variants) > 1:
        raise ConfigError(f"{path}: step.variants: a tune step runs one search, got variants")
    seeds = _seeds(path, table.get("seeds"), kind)
    published = {str(k): str(v) for k, v in table.get("published", {}).items()}
    expect = table.get("expect")
    parts = expect if isinstance(expect, list) else [expect]
    if expect is not None and not (parts and all(isinstance(p, dict) for p in parts)):
        raise ConfigError(
            f"{path}: step.expect: expected a table {{ metric = ..., ... }} or a list of them"
        )
    return Step(
        path,
        kind,
        str(table.get("description", "")),
        variants,
        published,
        raw,
        seeds,
        _text(path, table, "reference"),
        str(table.get("hypothesis", "")),
        expect,
        select=_select(path, table.get("select", "val_loss")),
    )


def _select(path: Path, value: Any) -> str:
    """A step may pick its variant on validation accuracy: a loss that label smoothing raises
    does not rank unlike losses fairly."""
    if value not in SELECTIONS:
        options = ", ".join(SELECTIONS)
        raise ConfigError(f"{path}: step.select: expected one of {options}, got {value!r}")
    return value


def parse_seeds(value: Any, where: str) -> int | list[int]:
    """`3` (a count) or `[1, 2, 3]` (distinct integers)."""
    ints = isinstance(value, list) and all(
        isinstance(s, int) and not isinstance(s, bool) for s in value
    )
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if ints and value and len(set(value)) == len(value):
        return list(value)
    raise ConfigError(
        f"{where}: expected a count >= 1 or a list of distinct integers, got {value!r}"
    )


def _seeds(path: Path, value: Any, kind: str) -> int | list[int] | None:
    if value is None:
        return None
    if kind == "tune":
        raise ConfigError(
            f"{path}: step.seeds: a tune step runs one search (its trials vary with "
            "search.seed); seeds apply to train steps"
        )
    return parse_seeds(value, f"{path}: step.seeds")


def _text(path: Path, table: dict[str, Any], key: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{path}: step.{key}: expected a string, got {value!r}")
    return value


def _variants(path: Path, table: dict[str, Any]) -> list[Variant]:
    if "grid" in table and "variants" in table:
        raise ConfigError(f"{path}: step: give variants or grid, not both")
    if "grid" in table:
        keys = list(table["grid"])
        values = [table["grid"][k] for k in keys]
        if not keys or not all(isinstance(v, list) and v for v in values):
            raise ConfigError(f"{path}: step.grid: expected key = [values, ...] entries")
        return [
            Variant(
                "-".join(f"{k.split('.')[-1]}={v}" for k, v in zip(keys, combo)),
                [override_text(k, v) for k, v in zip(keys, combo)],
            )
            for combo in itertools.product(*values)
        ]
    variants = table.get("variants", [{"name": path.stem.split("-", 1)[-1]}])
    out = []
    for item in variants:
        if not isinstance(item, dict) or "name" not in item:
            raise ConfigError(f"{path}: step.variants: expected {{ name = ..., set = [...] }}")
        out.append(Variant(str(item["name"]), [str(s) for s in item.get("set", [])]))
    names = [v.name for v in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: step.variants: names must be unique, got {names}")
    if any(":" in n for n in names):
        raise ConfigError(f"{path}: step.variants: a name may not contain ':', got {names}")
    return out


# ---------------------------------------------------------------- identity


def _shrink(raw: dict[str, Any]) -> None:
    """Caps epochs, epoch length and data so a quick study keeps its shape but not its cost."""
    for key, cap in QUICK.items():
        section, name = key.split(".")
        table = raw.setdefault(section, {})
        current = table.get(name)
        if name == "steps_per_epoch" and not current:
            continue  # full passes stay full passes, over the smaller training split
        table[name] = cap if current is None or current == 0 else min(current, cap)


def step_hash(step: Step, quick: bool) -> str:
    """Changes when anything that shapes the step's runs changes, seeds aside: runs are found
    again by (variant, seed), so adding a seed keeps the runs already made."""
    configs = [to_toml(step.config(v, quick)) for v in step.variants]
    text = json.dumps([step.kind, [v.name for v in step.variants], configs])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
