"""The "convnet" family, built for speed: per stage a few conv-BatchNorm-activation blocks, then a
max-pool halving the map; the last map is pooled globally into one linear layer.

BatchNorm lets it train at high learning rates, and the global pool keeps the head small, so most
of the time goes to convolutions, which bf16 and channels_last speed up most.

    create_model(ConvnetConfig(channels=[32, 64, 128], width=0.5))  # 16, 32, 64 channels
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from cnnlab.config import ConvnetConfig
from cnnlab.models._blocks import (
    MONOTONIC,
    ArchitectureError,
    FeaturesHead,
    check_io,
    make_activation,
)

_POOLS = {"max": nn.AdaptiveMaxPool2d, "avg": nn.AdaptiveAvgPool2d}


def stage_channels(cfg: ConvnetConfig) -> list[int]:
    """Each stage's channels after the width multiplier; at least one channel each."""
    return [max(1, round(c * cfg.width)) for c in cfg.channels]


def build_convnet(
    cfg: ConvnetConfig, input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10
) -> FeaturesHead:
    """The "convnet" builder; a stage whose map is already 1 pixel wide or high is not pooled."""
    channels, h, w = check_io(input_shape, num_classes)
    widths = stage_channels(cfg)
    if not widths:
        raise ArchitectureError("model.channels: expected at least one stage, got []")
    stages = []
    for out in widths:
        stages.append(conv_stage(channels, out, cfg.convs_per_stage, cfg.activation, h, w))
        channels, h, w = out, max(1, h // 2), max(1, w // 2)
    head: list[nn.Module] = [_POOLS[cfg.head_pool](1), nn.Flatten()]
    if cfg.dropout > 0:
        head.append(nn.Dropout(cfg.dropout))
    head.append(nn.Linear(channels, num_classes))
    return FeaturesHead(nn.Sequential(*stages), nn.Sequential(*head))


def conv_stage(
    in_channels: int, out_channels: int, convs: int, activation: str, h: int, w: int
) -> nn.Sequential:
    """`convs` x (3x3 conv without bias, BatchNorm, activation), then max-pool 2 if the map allows.

    The conv has no bias because BatchNorm's shift replaces it. With a monotonic activation the
    pool goes before the last one, as in the cnn family: the same function, less work.
    """
    layers: list[nn.Module] = []
    for i in range(convs):
        source = in_channels if i == 0 else out_channels
        layers += [
            nn.Conv2d(source, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            make_activation(activation),
        ]
    if h >= 2 and w >= 2:
        at = len(layers) - 1 if activation in MONOTONIC else len(layers)
        layers.insert(at, nn.MaxPool2d(2))
    return nn.Sequential(*layers)
