"""Views of a Config: plain data, the flat `section.key` names, and TOML that reads back.

to_toml's text, given to load_config, makes an equal Config; toml_value writes one value the
way both a config file and a `--set` override read it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnlab.config._schema import Config


def to_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    return dataclasses.asdict(cfg)


def flatten(cfg: Config) -> dict[str, Any]:
    """{"section.key": value}: the names used by --set, search spaces and MLflow params.

    [search] is left out: it says how to explore configs and is not part of any one of them,
    so a training run neither logs nor depends on it.
    """
    tables = to_dict(cfg).items()
    return {f"{s}.{k}": v for s, table in tables if s != "search" for k, v in table.items()}


def to_toml(cfg: Config) -> str:
    """The resolved config as TOML that load_config reads back to an equal Config."""
    lines: list[str] = []
    for section, table in to_dict(cfg).items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
        lines.append("")
    return "\n".join(lines)


def toml_value(value: Any) -> str:
    """A value as TOML writes it: 3, 0.001, "adam", [128, 64], { "a.b" = 1 }."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table; dotted keys are quoted to stay one key
        items = [f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items()]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    return repr(value)
