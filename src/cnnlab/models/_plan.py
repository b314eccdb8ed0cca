"""Pure arithmetic over a CnnConfig: each conv block's sizes, checked before any module exists.

A search engine calls this once per trial, so it stays free of torch and runs in microseconds:

    plans = plan_cnn(CnnConfig(num_layers=3), (1, 28, 28))
    plans[-1].out_size  # (2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cnnlab.config import CnnConfig
from cnnlab.models._blocks import ArchitectureError, check_io


@dataclass(frozen=True)
class BlockPlan:
    """One conv block; sizes are (height, width) in pixels, the conv has stride 1."""

    block: int  # 1-based, as in error messages (module index features.<block - 1>)
    in_channels: int
    out_channels: int
    in_size: tuple[int, int]  # map entering the conv
    padding: int  # zero padding on each side
    conv_size: tuple[int, int]  # after the conv
    out_size: tuple[int, int]  # after the max-pool; equals conv_size when pool_size is 1


def block_paddings(cfg: CnnConfig) -> list[int]:
    """Padding per block: an int applies to all; a list's last value repeats for deeper blocks.

    Values past the last block are unused, so a search over num_layers can keep one padding
    list (the course's [1, 0] with a single block is a 1-block net padded by 1).
    """
    pads = cfg.padding if isinstance(cfg.padding, list) else [cfg.padding]  # checked by CnnConfig
    return [pads[min(i, len(pads) - 1)] for i in range(cfg.num_layers)]


def plan_cnn(cfg: CnnConfig, input_shape: Sequence[int] = (1, 28, 28)) -> list[BlockPlan]:
    """Sizes of every conv block; ArchitectureError naming the block that does not fit.

    The counts and paddings are in range: a CnnConfig checks them when it is made."""
    channels, height, width = check_io(input_shape, 1)
    plans: list[BlockPlan] = []
    size = (height, width)
    for block, padding in enumerate(block_paddings(cfg), start=1):
        plan = _plan_block(cfg, block, channels, size, padding)
        plans.append(plan)
        channels, size = plan.out_channels, plan.out_size
    return plans


def _plan_block(
    cfg: CnnConfig, block: int, in_channels: int, size: tuple[int, int], padding: int
) -> BlockPlan:
    kernel, pool = cfg.kernel_size, cfg.pool_size
    where = f"model: conv block {block}"
    if kernel > min(size) + 2 * padding:
        raise ArchitectureError(
            f"{where}: kernel {kernel} exceeds its {_hw(size)} input (padding {padding})"
        )
    conv = (size[0] + 2 * padding - kernel + 1, size[1] + 2 * padding - kernel + 1)
    out = (conv[0] // pool, conv[1] // pool)  # MaxPool2d floors: stride = window, no padding
    if min(out) < 1:
        raise ArchitectureError(f"{where}: max-pool {pool} shrinks the {_hw(conv)} map below 1x1")
    return BlockPlan(block, in_channels, cfg.filters, size, padding, conv, out)


def _hw(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"
