"""The "cnn" family: conv blocks (conv, [BatchNorm], activation, [Dropout2d], [max-pool]), then
a pooled or flattened map through a dense head.

The course CNN (28 -> 28 -> 14 -> 12 -> 6 -> 4 -> 2, then average-pooled):

    create_model(CnnConfig(filters=32, num_layers=3, head_pool="avg"))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from cnnlab.config import CnnConfig
from cnnlab.models._blocks import (
    MONOTONIC,
    ArchitectureError,
    FeaturesHead,
    check_io,
    dense_layers,
    dry_run,
    make_activation,
)
from cnnlab.models._plan import BlockPlan, plan_cnn

# How the last feature map enters the dense head. "avg" is the course's AvgPool over the whole map;
# adaptive pools make that hold for any map size.
_HEAD_POOLS: dict[str, Callable[[], list[nn.Module]]] = {
    "flatten": lambda: [nn.Flatten()],
    "avg": lambda: [nn.AdaptiveAvgPool2d(1), nn.Flatten()],
    "max": lambda: [nn.AdaptiveMaxPool2d(1), nn.Flatten()],
}


def build_cnn(
    cfg: CnnConfig, input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10
) -> FeaturesHead:
    """The "cnn" builder; the arithmetic plan is checked before any module is made."""
    shape = check_io(input_shape, num_classes)
    features = nn.Sequential(*(conv_block(cfg, plan) for plan in plan_cnn(cfg, shape)))
    pool = head_pool(cfg.head_pool)
    in_features = dry_run(nn.Sequential(features, *pool), shape).shape[1]
    dense = dense_layers(in_features, cfg.hidden_units, cfg.activation, cfg.dropout, num_classes)
    return FeaturesHead(features, nn.Sequential(*pool, *dense))


def conv_block(cfg: CnnConfig, plan: BlockPlan) -> nn.Sequential:
    """One block as planned; the conv drops its bias under BatchNorm, whose shift replaces it.

    With a monotonic activation (relu, leaky_relu, tanh) the max-pool comes before it: the same
    outputs and gradients, but the activation and its backward touch a quarter of the values.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(
            plan.in_channels,
            plan.out_channels,
            cfg.kernel_size,
            padding=plan.padding,
            bias=not cfg.batchnorm,
        )
    ]
    if cfg.batchnorm:
        layers.append(nn.BatchNorm2d(plan.out_channels))
    pool = [nn.MaxPool2d(cfg.pool_size)] if cfg.pool_size > 1 else []
    dropout = [nn.Dropout2d(cfg.conv_dropout)] if cfg.conv_dropout > 0 else []
    activation = [make_activation(cfg.activation)]
    if cfg.activation in MONOTONIC:
        return nn.Sequential(*layers, *pool, *activation, *dropout)
    return nn.Sequential(*layers, *activation, *dropout, *pool)


def head_pool(name: str) -> list[nn.Module]:
    if name not in _HEAD_POOLS:
        raise ArchitectureError(
            f"model.head_pool: unknown {name!r}; expected one of {', '.join(_HEAD_POOLS)}"
        )
    return _HEAD_POOLS[name]()
