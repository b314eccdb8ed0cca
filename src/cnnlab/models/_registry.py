"""Model families by name, and the two entry points the rest of cnnlab uses.

model = create_model(cfg.model, input_shape=(1, 28, 28), num_classes=10)
check_architecture(cfg.model)  # cheap: no modules; raises ArchitectureError
register_model("tiny", TinyConfig, build_tiny)   # a family of the user's own, by name
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from cnnlab.config import MODEL_CONFIGS, CnnConfig, ConvnetConfig, MlpConfig, ModelConfig
from cnnlab.models._blocks import ArchitectureError, check_io
from cnnlab.models._cnn import build_cnn
from cnnlab.models._convnet import build_convnet
from cnnlab.models._mlp import build_mlp
from cnnlab.models._plan import plan_cnn

ModelBuilder = Callable[[Any, Sequence[int], int], nn.Module]  # (cfg, input_shape, num_classes)
ShapeCheck = Callable[[Any, Sequence[int]], object]  # (cfg, input_shape), no modules made


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family: its [model] settings, its builder and its optional shape check."""

    config: type  # the dataclass cnnlab.config parses `[model] name = ...` into
    build: ModelBuilder
    check: ShapeCheck | None = None  # None: nothing can misfit, or the dry run finds it


# By `model.name`; config.MODEL_CONFIGS is the parser's view of the same families (a test
# checks the two agree; register_model writes both).
FAMILIES: dict[str, Family] = {
    "cnn": Family(CnnConfig, build_cnn, plan_cnn),
    "mlp": Family(MlpConfig, build_mlp),
    "convnet": Family(ConvnetConfig, build_convnet),
}


def create_model(
    cfg: ModelConfig, input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10
) -> nn.Module:
    """Build the model `cfg.name` names, for float [B, C, H, W] input, in training mode."""
    return _family(cfg).build(cfg, input_shape, num_classes)


def check_architecture(
    cfg: ModelConfig, input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10
) -> None:
    """Raise ArchitectureError if create_model would; microseconds, so fit for every trial."""
    family = _family(cfg)
    shape = check_io(input_shape, num_classes)
    if family.check is not None:
        family.check(cfg, shape)


BUILT_IN_MODELS = frozenset(FAMILIES)


def register_model(
    name: str,
    config_class: type,
    builder: ModelBuilder,
    check: ShapeCheck | None = None,
) -> None:
    """Adds a model family: `[model] name = "<name>"` then builds it like a built-in one.

    Args:
        name: the family's name in configs, search spaces and MLflow params.
        config_class: a dataclass of the family's settings, each with a default and a type
            (parsed as strictly as the built-in sections), with a `name` field defaulting to
            `name`. Range checks go in its `__post_init__`, raising cnnlab.ConfigError.
        builder: `(cfg, input_shape, num_classes) -> nn.Module` for float [B, C, H, W] input.
        check: optional `(cfg, input_shape) -> anything`, raising ArchitectureError for a
            config no network can be built from, in microseconds (searches call it per trial).
            Without it, the dry run that dissects every model before training catches them.

    Registering a name again replaces the user's family (a notebook cell run twice); the
    built-in families cannot be replaced.
    """
    from cnnlab.config import ConfigError

    if name in BUILT_IN_MODELS:
        raise ConfigError(f"register_model: {name!r} is a built-in model family")
    if not dataclasses.is_dataclass(config_class):
        raise ConfigError(f"register_model: {config_class!r} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    if "name" not in fields or fields["name"].default != name:
        raise ConfigError(
            f"register_model: {config_class.__name__} needs a field name = {name!r}, so that a "
            "config says which family it is"
        )
    try:
        config_class()
    except TypeError as exc:
        raise ConfigError(
            f"register_model: every field of {config_class.__name__} needs a default ({exc})"
        ) from None
    MODEL_CONFIGS[name] = config_class
    FAMILIES[name] = Family(config_class, builder, check)


def _family(cfg: ModelConfig) -> Family:
    name = getattr(cfg, "name", None)
    if name not in FAMILIES:
        raise ArchitectureError(
            f"model.name: no model family {name!r}; expected one of {', '.join(FAMILIES)}"
        )
    family = FAMILIES[name]
    if not isinstance(cfg, family.config):
        raise ArchitectureError(
            f"model: family {name!r} is built from a {family.config.__name__}, "
            f"got a {type(cfg).__name__}"
        )
    return family
