"""Typed configuration: the one home of every default, and the only code that parses TOML.

    cfg = load_config("configs/default.toml", ["train.epochs=2", "model.filters=32"])
    cfg.train.lr, cfg.model.filters, flatten(cfg)["model.filters"]

Parsing is strict: an unknown key names the closest valid one, a value of the wrong type or out
of range says what was expected. Every problem raises ConfigError with one line of text.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Union, get_args, get_origin


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


@dataclass
class DataConfig(_Checked):
    SECTION: ClassVar[str] = "data"
    CHECKS: ClassVar[dict[str, tuple[Any, str]]] = {
        "val_fraction": _FRACTION,
        "train_limit": _AT_LEAST_0,
        "test_fraction": (lambda v: 0 < v < 1, "in (0, 1)"),
    }

    # a built-in (fashion-mnist, mnist, kmnist, cifar-10: `cnnlab data --list`) or "folder"
    dataset: str = "fashion-mnist"
    path: str = ""  # "folder": one sub-folder of images per class, optional train/ and test/
    image_size: int | list[int] = 0  # "folder": resize to this side or [height, width]; 0 = as
    # stored, where every image must have the same size
    test_fraction: float = 0.2  # "folder" without test/: share held out as the test set, (0, 1)
    val_fraction: float = 0.1  # share of the training set held out for model selection, [0, 1)
    train_limit: int = 0  # train on this many images of the training split; 0 = all of them
    split_seed: int = 42  # seeds the validation split alone, so runs that differ in train.seed
    # (a study's seeds) are selected and compared on the same validation images; a folder's
    # held-out test set too

    def _check_together(self) -> None:
        from cnnlab.data._registry import DATASET_NAMES, FOLDER  # data imports config

        if self.dataset not in DATASET_NAMES:
            close = difflib.get_close_matches(self.dataset, DATASET_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"data.dataset: expected one of {', '.join(DATASET_NAMES)}, "
                f"got {self.dataset!r}{hint}"
            )
        folder = self.dataset == FOLDER
        if folder and not self.path:
            raise ConfigError('data.path: expected the folder of images for dataset = "folder"')
        sizes = self.image_size if isinstance(self.image_size, list) else [self.image_size]
        if isinstance(self.image_size, list) and not (
            len(sizes) == 2 and all(isinstance(v, int) and v > 0 for v in sizes)
        ):
            raise ConfigError(
                f"data.image_size: expected a side >= 0 or [height, width] > 0, "
                f"got {self.image_size!r}"
            )
        if not isinstance(self.image_size, list) and self.image_size < 0:
            raise ConfigError(f"data.image_size: expected >= 0, got {self.image_size!r}")
        if not folder:
            for key, default in (("path", ""), ("image_size", 0)):
                if getattr(self, key) != default:
                    raise ConfigError(
                        f'data.{key}: expected only with dataset = "folder", '
                        f"got {getattr(self, key)!r} with dataset = {self.dataset!r}"
                    )


@dataclass
class CnnConfig(_Checked):
    """Conv blocks (conv, [BatchNorm], activation, [Dropout2d], max-pool), then a dense head."""

    SECTION: ClassVar[str] = "model"
    CHECKS: ClassVar[dict[str, tuple[Any, str]]] = {
        "filters": _POSITIVE,
        "kernel_size": _POSITIVE,
        "num_layers": _POSITIVE,
        "pool_size": _POSITIVE,
        "conv_dropout": _FRACTION,
        "dropout": _FRACTION,
    }

    name: Literal["cnn"] = "cnn"
    filters: int = 64  # output channels of every conv block
    kernel_size: int = 3  # square conv kernel, pixels
    num_layers: int = 2  # number of conv blocks
    padding: int | list[int] = field(default_factory=lambda: [1, 0])  # per block, last repeats
    pool_size: int = 2  # max-pool window and stride after each block; 1 = no pooling
    batchnorm: bool = False  # BatchNorm2d between conv and activation
    conv_dropout: float = 0.0  # Dropout2d after the activation in each block, [0, 1)
    activation: ActivationName = "relu"
    head_pool: Literal["flatten", "avg", "max"] = "flatten"  # how the last map enters the head
    hidden_units: list[int] = field(default_factory=lambda: [128, 64])  # dense head widths
    dropout: float = 0.0  # Dropout after each hidden activation of the head, [0, 1)

    def _check_together(self) -> None:
        pads = self.padding if isinstance(self.padding, list) else [self.padding]
        if not pads or not all(isinstance(p, int) and p >= 0 for p in pads):
            raise ConfigError(f"model.padding: expected integers >= 0, got {self.padding!r}")
        if not all(u > 0 for u in self.hidden_units):
            raise ConfigError(f"model.hidden_units: expected widths > 0, got {self.hidden_units!r}")


@dataclass
class MlpConfig(_Checked):
    """Fully connected network on the flattened image."""

    SECTION: ClassVar[str] = "model"
    CHECKS: ClassVar[dict[str, tuple[Any, str]]] = {
        "dropout": _FRACTION,
    }

    name: Literal["mlp"] = "mlp"
    units: list[int] = field(default_factory=lambda: [256, 128])  # hidden layer widths
    dropout: float = 0.0  # Dropout after each hidden activation, [0, 1)
    activation: ActivationName = "relu"

    def _check_together(self) -> None:
        if not all(u > 0 for u in self.units):
            raise ConfigError(f"model.units: expected widths > 0, got {self.units!r}")


@dataclass
class ConvnetConfig(_Checked):
    """A fast BatchNorm net: per stage conv-BN-act blocks then max-pool 2; global pool, linear."""

    SECTION: ClassVar[str] = "model"
    CHECKS: ClassVar[dict[str, tuple[Any, str]]] = {
        "dropout": _FRACTION,
        "width": _POSITIVE,
        "convs_per_stage": _POSITIVE,
        "channels": _POSITIVE,
    }

    name: Literal["convnet"] = "convnet"
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])  # per stage, before width
    width: float = 1.0  # multiplies every stage's channels (rounded, at least 1)
    convs_per_stage: int = 1  # conv-BN-act blocks in each stage
    activation: ActivationName = "gelu"
    head_pool: Literal["max", "avg"] = "max"  # global pool of the last map before the linear head
    dropout: float = 0.0  # Dropout before the linear head, [0, 1)


# Model families by name; cnnlab.models.MODELS must hold a builder for each (a test checks).
MODEL_CONFIGS: dict[str, type] = {"cnn": CnnConfig, "mlp": MlpConfig, "convnet": ConvnetConfig}
ModelConfig = CnnConfig | MlpConfig | ConvnetConfig


@dataclass
class TrainConfig(_Checked):
    SECTION: ClassVar[str] = "train"
    CHECKS: ClassVar[dict[str, tuple[Any, str]]] = {
        "epochs": _POSITIVE,
        "steps_per_epoch": _AT_LEAST_0,
        "batch_size": _POSITIVE,
        "lr": _POSITIVE,
        "weight_decay": _AT_LEAST_0,
        "momentum": _FRACTION,
        "step_size": _POSITIVE,
        "gamma": (lambda v: 0 < v <= 1, "in (0, 1]"),
        "plateau_patience": _AT_LEAST_0,
        "pct_start": (lambda v: 0 < v < 1, "in (0, 1)"),
        "label_smoothing": _FRACTION,
        "early_stopping": _AT_LEAST_0,
        "eval_batch_size": _POSITIVE,
        "crop_padding": _AT_LEAST_0,
        "erase": _FRACTION,
        "ema": _FRACTION,
        "threads": _AT_LEAST_0,
    }

    epochs: int = 10  # upper bound; early stopping may end sooner
    steps_per_epoch: int = 0  # batches per epoch; 0 = one pass over the training split
    batch_size: int = 64  # images per optimizer step
    optimizer: OptimizerName = "adam"
    lr: float = 1e-3  # learning rate (peak rate for onecycle)
    weight_decay: float = 1e-5  # L2 for sgd/adam, decoupled for adamw
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    scheduler: SchedulerName = "none"
    step_size: int = 5  # step: epochs between lr decays
    gamma: float = 0.1  # step and plateau: factor applied to lr at each decay
    plateau_patience: int = 10  # plateau: epochs without val_loss improvement before a decay
    pct_start: float = 0.25  # onecycle: share of all steps spent warming up, (0, 1)
    label_smoothing: float = 0.0  # cross-entropy label smoothing, [0, 1)
    early_stopping: int = 0  # stop after this many epochs without val_loss improvement; 0 = off
    restore_best: bool = True  # evaluate the test set with the best validation epoch's weights
    eval_batch_size: int = 1000  # images per forward pass when evaluating
    seed: int = 42  # seeds torch, numpy, weight init, batch order and augmentation
    device: DeviceName = "auto"  # auto picks cuda, then mps, then cpu
    precision: PrecisionName = "auto"  # autocast: auto = bf16 on cuda or a CPU with native bf16
    channels_last: bool = True  # NHWC layout for conv weights and batches (oneDNN/cuDNN favour it)
    fused_stem: bool = True  # on CPU, run the first conv block (conv, [BatchNorm], 2x2 max-pool,
    # [relu]) as one C kernel, built on first use with the system's C compiler; without one,
    # PyTorch's ops (BatchNorm still folded into the conv)
    flip: bool = False  # augment: mirror each training image left-right with probability 1/2
    crop_padding: int = 0  # augment: random crop after zero-padding this many pixels; 0 = off
    erase: float = 0.0  # augment: probability of blanking a random rectangle per image, [0, 1)
    ema: float = 0.0  # decay of a per-step moving average of the weights, evaluated and tested
    # in their place (e.g. 0.999); 0 = off
    tta_flip: bool = False  # evaluate on the mean logits of each image and its mirror
    compile: bool = False  # torch.compile the model; compiling costs about a minute on 2 cores
    threads: int = 0  # torch intra-op threads; 0 = one per core this process may use

    def _check_together(self) -> None:
        if self.optimizer == "sgd" and self.nesterov and self.momentum == 0:
            raise ConfigError("train.nesterov: needs train.momentum > 0, got 0.0")


@dataclass
class TrackingConfig(_Checked):
    SECTION: ClassVar[str] = "tracking"

    experiment: str = "cnnlab"  # MLflow experiment name
    run_name: str = ""  # MLflow run name; empty = MLflow picks one
    runs_dir: str = "cnnlab-runs"  # home of the default store: mlflow.db and artifacts/
    uri: str = ""  # tracking URI; empty = sqlite:///<runs_dir>/mlflow.db
    log_weights: bool = True  # log the trained state_dict as an artifact
    # log a finished run's checkpoint (what --resume continues from) as checkpoint/last.pt;
    # false = it is deleted when the run finishes (it holds optimizer state: often large)
    log_checkpoint: bool = False
    # log the trained network as an MLflow model (mlflow_model/): pyfunc, serving, registry
    log_model: bool = True


@dataclass
class SearchConfig(_Checked):
    """How `cnnlab tune` explores configs; `cnnlab train` ignores this section."""

    SECTION: ClassVar[str] = "search"
    CHECKS: ClassVar[dict[str, tuple[Any, str]]] = {
        "trials": _POSITIVE,
        "timeout": _AT_LEAST_0,
        "startup_trials": _AT_LEAST_0,
        "pruner_startup": _AT_LEAST_0,
        "pruner_warmup": _AT_LEAST_0,
        "heartbeat": _POSITIVE,
    }

    engine: Literal["hyperopt", "optuna"] = "hyperopt"  # library that proposes trials
    algo: Literal["tpe", "random"] = "tpe"  # proposal algorithm, in either engine
    trials: int = 20  # trials in total, counted across resumes
    timeout: float = 0.0  # seconds after which no new trial starts; 0 = no limit
    seed: int = 42  # seeds the proposals; each trial trains with train.seed
    objective: Literal["val_loss", "val_accuracy"] = "val_loss"  # of the best epoch; never test
    startup_trials: int = 10  # TPE proposes this many trials at random before modelling
    # impossible architectures count toward `trials`; false = recorded, and another is drawn
    count_invalid: bool = True
    pruner: Literal["none", "median", "hyperband"] = "none"  # optuna: stop weak trials early
    pruner_startup: int = 3  # median: trials that finish before any is pruned
    pruner_warmup: int = 0  # median: epochs every trial runs before it may be pruned
    name: str = ""  # tells apart searches of the same config; part of the search id
    state_dir: str = ""  # engine state (Trials pickle, Optuna SQLite); empty = beside MLflow
    # optuna: a study shared by workers: postgresql://..., sqlite:///... or journal:///file.log
    storage: str = ""  # empty = a local SQLite study beside MLflow, one process at a time
    study: str = ""  # the shared study's name; empty = cnnlab-<hash of the config>
    heartbeat: int = 10  # seconds between a worker's heartbeats; silent 3x longer = dead
    register: str = ""  # after the search, the best trial's MLflow model as a new version of
    # this registered model in the MLflow Model Registry; empty = none
    # dotted config key -> distribution table, e.g. "model.filters" =
    # { dist = "quniform", low = 16, high = 128, q = 8, int = true }; see cnnlab.search
    space: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=CnnConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    search: SearchConfig = field(default_factory=SearchConfig)


SECTIONS = {
    "data": DataConfig,
    "train": TrainConfig,
    "tracking": TrackingConfig,
    "search": SearchConfig,
}


# ---------------------------------------------------------------- parsing


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
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in table.items():
        if key not in names:
            raise ConfigError(f"{section}.{key}: unknown key{where}{_closest(key, names, section)}")
        values[key] = _coerce(value, hints[key], f"{section}.{key}")
    return cls(**values)


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


# ---------------------------------------------------------------- views


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
