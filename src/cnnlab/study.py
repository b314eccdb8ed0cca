"""Run a study folder step by step (train, grid or tune), resume what is done, then report.

A step is one TOML file: an ordinary config (sections data, model, train, tracking, search)
plus a `[step]` table that says how to run it:

    [step]
    kind = "train"                     # train: one run per variant; tune: one search
    description = "What this step asks, in a sentence."
    base = "../configs/fast.toml"      # optional: a config file the step's sections overlay
    variants = [{ name = "bn", set = ["model.batchnorm=true"] }]   # runs; default one run
    grid = { "train.optimizer" = ["adam", "adamw"] }               # or every combination
    published = { setting = "...", accuracy = "79.88%" }           # the study's own figures

Steps run in file-name order, each in its own MLflow experiment `<study>/<file stem>`. A step
whose runs all finished is skipped; a half-done step runs only what is missing.

    results = run_study(Path("experiments"), quick=True)
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
from collections.abc import Callable
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

STEP_KEYS = ("kind", "description", "base", "variants", "grid", "published")
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

    @property
    def name(self) -> str:
        return self.path.stem

    def config(self, variant: Variant, quick: bool) -> Config:
        raw = json.loads(json.dumps(self.raw))  # a deep copy of plain data
        for item in variant.overrides:
            apply_override(raw, item)
        if quick:
            _shrink(raw)
        return from_dict(raw)


def load_steps(folder: Path, only: str | None = None) -> list[Step]:
    """Parses and checks every step (all configs built) before anything runs."""
    paths = sorted(folder.glob("*.toml"))
    if not paths:
        raise ConfigError(f"{folder}: no step files (*.toml) in the study folder")
    steps = [load_step(p) for p in paths]
    if only is not None:
        names = [s.name for s in steps]
        matches = [s for s in steps if s.name == only or s.name.split("-", 1)[-1] == only]
        if not matches:
            hint = difflib.get_close_matches(only, names, n=1)
            close = f" (did you mean {hint[0]}?)" if hint else ""
            raise ConfigError(f"--only: no step {only!r} in {folder}{close}")
        steps = matches
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
    published = {str(k): str(v) for k, v in table.get("published", {}).items()}
    return Step(path, kind, str(table.get("description", "")), variants, published, raw)


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
    return out


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
    """Changes when anything that shapes the step's runs changes."""
    configs = [to_toml(step.config(v, quick)) for v in step.variants]
    text = json.dumps([step.kind, [v.name for v in step.variants], configs])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- running


@dataclass
class StepResult:
    step: str
    experiment: str
    skipped: bool
    runs: int


def run_study(
    folder: Path,
    *,
    quick: bool = False,
    only: str | None = None,
    tracking_uri: str | None = None,
    data_dir: str | None = None,
    tune: Callable[..., Any] | None = None,
    echo: Callable[[str], None] = print,
) -> tuple[list[StepResult], str]:
    """Runs every step in order; returns what happened per step and the tracking URI."""
    from cnnlab.tracking import client, resolve_uri

    steps = load_steps(folder, only)
    prefix = f"{folder.resolve().name}{'-quick' if quick else ''}"
    first = steps[0].config(steps[0].variants[0], quick)
    uri = resolve_uri(first.tracking, tracking_uri)
    mlflow_client = client(uri)
    results = []
    for step in steps:
        experiment = f"{prefix}/{step.name}"
        results.append(_run_step(step, experiment, quick, uri, mlflow_client, data_dir, tune, echo))
    return results, uri


def _run_step(step, experiment, quick, uri, mlflow_client, data_dir, tune, echo) -> StepResult:
    from cnnlab.tracking import experiment_id

    digest = step_hash(step, quick)
    exp_id = experiment_id(mlflow_client, experiment, uri)
    if mlflow_client.get_experiment(exp_id).tags.get("cnnlab.step_complete") == digest:
        echo(f"step {step.name}: already complete in experiment {experiment!r}, skipped")
        return StepResult(step.name, experiment, True, 0)
    _describe(mlflow_client, exp_id, step)
    echo(f"step {step.name} ({step.kind}): {step.description or experiment}")
    if step.kind == "tune":
        cfg = step.config(step.variants[0], quick)
        cfg.tracking.experiment = experiment
        if tune is None:
            tune = _tune
        tune(cfg, tracking_uri=uri, data_dir=data_dir, echo=echo)
        count = cfg.search.trials
    else:
        count = _train_variants(step, experiment, digest, quick, uri, mlflow_client, data_dir, echo)
    mlflow_client.set_experiment_tag(exp_id, "cnnlab.step_complete", digest)
    return StepResult(step.name, experiment, False, count)


def _tune(cfg: Config, *, tracking_uri: str, data_dir: str | None, echo) -> None:
    from cnnlab.search import describe_record, run_search

    def on_trial(record) -> None:
        echo(f"  {describe_record(record)}")

    run_search(cfg, tracking_uri=tracking_uri, data_dir=data_dir, on_trial=on_trial)


def _train_variants(step, experiment, digest, quick, uri, mlflow_client, data_dir, echo) -> int:
    from cnnlab.runner import load_splits, train_run

    done = _finished_variants(mlflow_client, experiment, digest)
    splits_cache: dict[str, Any] = {}
    count = 0
    for variant in step.variants:
        if variant.name in done:
            echo(f"  {variant.name}: finished before, skipped")
            continue
        cfg = step.config(variant, quick)
        cfg.tracking.experiment, cfg.tracking.run_name = experiment, variant.name
        key = json.dumps([vars(cfg.data), cfg.train.seed], sort_keys=True)
        if key not in splits_cache:
            splits_cache[key] = load_splits(cfg, data_dir)
        tags = {"cnnlab.step_hash": digest, "cnnlab.variant": variant.name}
        outcome = train_run(cfg, tracking_uri=uri, splits=splits_cache[key], extra_tags=tags)
        r = outcome.result
        echo(
            f"  {variant.name}: val_loss {r.best_val_loss:.4f}  test_loss {r.test_loss:.4f}  "
            f"test_accuracy {r.test_accuracy:.4f}  ({r.images_seen:,} images, {r.seconds:.0f}s)"
        )
        count += 1
    return count


def _finished_variants(mlflow_client, experiment: str, digest: str) -> set[str]:
    exp = mlflow_client.get_experiment_by_name(experiment)
    runs = mlflow_client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`cnnlab.step_hash` = '{digest}' and attributes.status = 'FINISHED'",
    )
    return {r.data.tags.get("cnnlab.variant") for r in runs}


def _describe(mlflow_client, exp_id: str, step: Step) -> None:
    """Stores what the report needs to know of the step in the experiment itself."""
    from cnnlab.reports import PUBLISHED

    tags = {f"{PUBLISHED}{k}": v for k, v in step.published.items()}
    if step.description:
        tags["cnnlab.description"] = step.description
        tags["mlflow.note.content"] = step.description  # shown by the MLflow UI
    for key, value in tags.items():
        mlflow_client.set_experiment_tag(exp_id, key, value)
