"""Pieces shared by the model families: the error type, activations by name, the dense stack and
the dry run that derives tensor shapes from real modules instead of hard-coding them."""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable, Sequence

import torch
from torch import nn

from cnnlab.config import ConfigError

InputShape = tuple[int, int, int]  # (channels, height, width) of one image


class ArchitectureError(ConfigError):
    """Layers that do not fit their input, e.g. a kernel larger than its map; one-line message.

    A ConfigError, so callers that already map bad configs to an exit code need no new case.
    """


# Keys match config.ActivationName; a test keeps the two in step.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
}

# Non-decreasing activations commute with max-pooling: pool(f(x)) == f(pool(x)), gradients too.
MONOTONIC = frozenset({"relu", "leaky_relu", "tanh"})


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name: `make_activation("gelu")` -> GELU()."""
    if name not in ACTIVATIONS:
        match = difflib.get_close_matches(name, list(ACTIVATIONS), n=1)
        hint = f" (did you mean {match[0]}?)" if match else ""
        raise ArchitectureError(
            f"model.activation: unknown activation {name!r}{hint}; "
            f"expected one of {', '.join(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]()


def check_io(input_shape: Sequence[int], num_classes: int) -> InputShape:
    """Validate what every family is built for; returns the shape as a (C, H, W) tuple."""
    try:  # operator.index admits numpy and torch integers and rejects floats
        shape = tuple(operator.index(d) for d in input_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ArchitectureError(
            "model: input shape must be (channels, height, width), each an integer >= 1, "
            f"got {input_shape!r}"
        )
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ArchitectureError(f"model: num_classes must be >= 1, got {num_classes!r}")
    return shape  # type: ignore[return-value]


def dense_layers(
    in_features: int, widths: Sequence[int], activation: str, dropout: float, num_classes: int
) -> list[nn.Module]:
    """Linear, activation, [Dropout] per hidden width, then the Linear that scores the classes."""
    if not all(w >= 1 for w in widths):
        raise ArchitectureError(f"model: hidden widths must be >= 1, got {list(widths)!r}")
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_features, width), make_activation(activation)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return layers


def dry_run(module: nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    """Output for one zero image (batch 1, eval mode, no grad); every module's mode is restored.

    Eval mode because BatchNorm refuses a batch of one 1x1 map in training mode.
    """
    modes = {m: m.training for m in module.modules()}
    param = next(module.parameters(), None)
    where = {"device": param.device, "dtype": param.dtype} if param is not None else {}
    x = torch.zeros(1, *input_shape, **where)
    module.eval()
    try:
        with torch.no_grad():
            return module(x)
    finally:
        for m, mode in modes.items():
            m.training = mode


class FeaturesHead(nn.Module):
    """`features` (one nn.Sequential per conv block or stage) then `head`: the network of the
    cnn and convnet families; summaries name layers by these two."""

    def __init__(self, features: nn.Sequential, head: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
