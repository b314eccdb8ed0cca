"""The "mlp" family: the flattened image through Linear, activation, [Dropout] per width.

create_model(MlpConfig(units=[256, 128]))  # 784 -> 256 -> 128 -> 10
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.config import MlpConfig
from cnnlab.models._blocks import check_io, dense_layers


class Mlp(nn.Module):
    """A dense `head` only; there is no `features` stack, so summaries report no feature map."""

    def __init__(self, head: nn.Sequential) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


def build_mlp(
    cfg: MlpConfig, input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10
) -> Mlp:
    """The "mlp" builder; input features are C * H * W of the image."""
    shape = check_io(input_shape, num_classes)
    dense = dense_layers(math.prod(shape), cfg.units, cfg.activation, cfg.dropout, num_classes)
    return Mlp(nn.Sequential(nn.Flatten(), *dense))
