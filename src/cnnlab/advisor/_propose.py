"""A diagnosis turned into the next step: a step file in the study's own format that runs as is.

    text = step_file(diagnosis, config_text, step="2-extended-training", variant="20-course-epochs",
                     seeds=3, name="7-remove-a-block", origin="advise, 2026-12-06")

The step's config is the diagnosed run's own, as it logged it (config.toml), with the one change
the diagnosis proposes; its reference is the variant it was drawn from, and its hypothesis and
expectation come from the diagnosis, so `cnnlab study DIR --only NAME` runs it and judges it
once the file is copied into the study folder DIR.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from cnnlab.config import apply_override, from_dict, override_text, to_dict, toml_value

# Sections a proposed train step leaves to the study: where runs go, and a search it does not run.
_LEFT_OUT = {"train": ("tracking", "search"), "tune": ("tracking",)}


def step_file(
    diagnosis: Any,
    config_text: str,
    *,
    step: str,
    variant: str | None,
    seeds: int,
    origin: str,
) -> str:
    """The proposed step as TOML; ConfigError when the change does not make a valid config."""
    kind = "tune" if diagnosis.kind == "search_edge" else "train"
    raw = tomllib.loads(config_text)
    for key, value in diagnosis.change.items():
        _apply(raw, key, value)
    sections = to_dict(from_dict(raw))  # checked as the study will check it
    reference = f"{step}:{variant}" if variant else step
    table: dict[str, Any] = {"kind": kind, "description": _description(diagnosis)}
    if kind == "train":
        table.update(seeds=max(2, seeds), reference=reference)
        table["hypothesis"] = diagnosis.hypothesis
        parts = diagnosis.expect if isinstance(diagnosis.expect, list) else [diagnosis.expect]
        table["expect"] = [{**p, "reference": reference} for p in parts if p]
    lines = [
        f"# Proposed by {origin}, from {reference}.",
        *_comment(f"Why: {diagnosis.rule} Evidence: {diagnosis.evidence}"),
        "",
        "[step]",
        *(f"{k} = {toml_value(v)}" for k, v in table.items()),
        "",
    ]
    for section, values in sections.items():
        if section in _LEFT_OUT[kind]:
            continue
        lines.append(f"[{section}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    return "\n".join(lines)


def _apply(raw: dict[str, Any], key: str, value: Any) -> None:
    """`train.epochs` or `search.space.<key>.<bound>` (a search space's key holds dots)."""
    found = re.fullmatch(r"search\.space\.(.+)\.(low|high)", key)
    if found:
        table = raw["search"]["space"]
        if found[1] not in table:  # a space written as nested tables: model = { filters = ...}
            for part in found[1].split(".")[:-1]:
                table = table[part]
            table[found[1].rsplit(".", 1)[-1]][found[2]] = value
        else:
            table[found[1]][found[2]] = value
        return
    apply_override(raw, override_text(key, value))


def _description(diagnosis: Any) -> str:
    change = ", ".join(f"{k} = {toml_value(v)}" for k, v in diagnosis.change.items())
    return f"{diagnosis.kind.replace('_', ' ').capitalize()}: {change}."


def _comment(text: str, width: int = 98) -> list[str]:
    words, lines, line = text.split(), [], "#"
    for word in words:
        if len(line) + 1 + len(word) > width:
            lines.append(line)
            line = "#"
        line += " " + word
    return [*lines, line]


def slug(kind: str) -> str:
    """A proposal's file-name stem after its number: what it does, in a few words."""
    return {
        "divergence": "lower-lr",
        "collapsed_map": "remove-a-block",
        "train_longer": "train-longer",
        "underfitting": "train-longer",
        "stop_earlier": "stop-earlier",
        "overfitting": "regularize",
        "search_edge": "widen-search",
    }.get(kind, kind.replace("_", "-"))
