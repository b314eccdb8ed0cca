"""The [model] section: one dataclass per built-in family, and the families by name.

`model.name` picks the class that parses the rest of the table; cnnlab.models.register_model
adds a user's family to MODEL_CONFIGS, so this dict is the one every lookup goes through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from cnnlab.config._base import _FRACTION, _POSITIVE, ActivationName, ConfigError, _Checked


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


# Model families by name, as the parser needs them; cnnlab.models.FAMILIES adds each one's
# builder and shape check (register_model writes both; a test checks they agree).
MODEL_CONFIGS: dict[str, type] = {"cnn": CnnConfig, "mlp": MlpConfig, "convnet": ConvnetConfig}
ModelConfig = CnnConfig | MlpConfig | ConvnetConfig
