"""Reading configs: TOML files (with `base` files under them), `section.key=value` overrides,
and plain data (parsed TOML), each into a checked Config.

Strict by design: an unknown key names the closest valid one, a value of the wrong type says
what was expected, and ints widen to floats but nothing else converts.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from cnnlab.config._base import ConfigError, _Checked, check_values
from cnnlab.config._models import MODEL_CONFIGS, ModelConfig
from cnnlab.config._schema import SECTIONS, Config
from cnnlab.config._toml import toml_value


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Read a TOML file (or the defaults when path is None), apply `section.key=value` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw = read_config_file(Path(path))
    for item in overrides:
        apply_override(raw, item)
    return from_dict(raw)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a UTF-8 text file (byte {exc.start}); a config is TOML text"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None


def read_config_file(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's sections, overlaid on those of its `base` file if it names one.

    `base = "fast.toml"` (a path relative to the file) lets a recipe state only what it
    changes; each section's keys override the base's one by one.
    """
    raw = read_toml(path)
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a config file path, got {base!r}")
    base_path = (path.parent / base).resolve()
    chain = (*_chain, path.resolve())
    if base_path in chain:
        raise ConfigError(f"{path}: base: {base!r} leads back to itself")
    return merge_sections(read_config_file(base_path, chain), raw)


def merge_sections(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`, key by key within each section (plain values replace whole)."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, table in top.items():
        if isinstance(table, dict) and isinstance(merged.get(section), dict):
            merged[section].update(table)
        else:
            merged[section] = table
    return merged


def parse_override(item: str) -> tuple[list[str], Any]:
    """`train.lr=0.01` -> (["train", "lr"], 0.01); values are TOML, bare words are strings."""
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) != 2 or not all(p.strip() for p in parts):
        raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. train.lr=0.01")
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if not text or any(c in text for c in "[]{}\"'=,"):
            raise ConfigError(f"--set {item!r}: {text!r} is not a TOML value") from None
        value = text  # a bare word such as adamw
    return [p.strip() for p in parts], value


def override_text(key: str, value: Any) -> str:
    """("model.filters", 88) -> "model.filters=88": the --set text apply_override reads back."""
    return f"{key}={toml_value(value)}"


def apply_override(raw: dict[str, Any], item: str) -> None:
    (section, key), value = parse_override(item)
    table = raw.setdefault(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"--set {item!r}: [{section}] is not a table in the config")
    table[key] = value


def from_dict(raw: dict[str, Any]) -> Config:
    """Build a checked Config from plain data (parsed TOML); unknown keys are errors."""
    valid = list(SECTIONS) + ["model"]
    for section in raw:
        if section not in valid:
            raise ConfigError(f"unknown section [{section}]{_closest(section, valid)}")
        if not isinstance(raw[section], dict):
            raise ConfigError(f"[{section}] must be a table, got {type(raw[section]).__name__}")
    kwargs = {name: _build(cls, raw.get(name, {}), name) for name, cls in SECTIONS.items()}
    return Config(model=_build_model(raw.get("model", {})), **kwargs)


def _build_model(table: dict[str, Any]) -> ModelConfig:
    name = table.get("name", "cnn")
    if name not in MODEL_CONFIGS:
        raise ConfigError(
            f"model.name: unknown model {name!r}{_closest(str(name), list(MODEL_CONFIGS))}; "
            f"expected one of {', '.join(MODEL_CONFIGS)}"
        )
    model = _build(MODEL_CONFIGS[name], table, "model", f" of model {name!r}")
    if not isinstance(model, _Checked):  # a family the user registered: finite numbers at least
        check_values(model, "model", {})
    return model


def _build(cls: type, table: dict[str, Any], section: str, where: str = "") -> Any:
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in table.items():
        if key not in names:
            raise ConfigError(f"{section}.{key}: unknown key{where}{_closest(key, names, section)}")
        values[key] = _coerce(value, hints[key], f"{section}.{key}")
    return cls(**values)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # Once per class: the annotations are strings (postponed evaluation), and evaluating them
    # compiles each one again: 8x the rest of a parse, which `tune --check` makes per sample.
    return typing.get_type_hints(cls)


def _closest(word: str, choices: list[str], section: str = "") -> str:
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    if not match:
        return ""
    return f" (did you mean {section + '.' if section else ''}{match[0]}?)"


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check a parsed value against a field's type; ints widen to floats, nothing else converts."""
    origin = get_origin(hint)
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            options = ", ".join(map(str, choices))
            raise ConfigError(f"{where}: expected one of {options}, got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        for option in get_args(hint):
            try:
                return _coerce(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: expected {_type_name(hint)}, got {_describe(value)}")
    if origin is list:
        (item,) = get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected {_type_name(hint)}, got {_describe(value)}")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected {_type_name(hint)}, got {_describe(value)}")
        return {k: _coerce(v, item, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:  # checked by the code that reads it (a search space's distributions)
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {_type_name(hint)}, got {_describe(value)}")
    return value


def _type_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is list:
        return f"a list of {_type_name(get_args(hint)[0])}"
    if origin is dict:
        return "a table"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(hint))
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        hint, str(hint)
    )


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"
