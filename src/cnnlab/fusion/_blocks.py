"""The transform: a built model's first conv block swapped for one that runs fused on the CPU.

    fused = fuse(model, torch.channels_last)   # ("features.0: conv, batchnorm, max-pool, relu
                                               #   as the native kernel",) or () when none fits

The block that sees the images (an nn.Sequential starting with the model's first Conv2d) is
replaced in its parent by a FusedBlock holding the same layers under the same names, so the
state_dict, the weights and a saved model do not change. Its forward runs conv [+ BatchNorm,
folded into the conv's weights] + 2x2 max-pool [+ relu] as the native kernel (`_stem.c`), or
without a compiler, BatchNorm folded into one PyTorch conv. Any other input (one that needs a
gradient, another dtype or device) takes the layers one by one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.fusion._fold import fold_batchnorm, foldable
from cnnlab.fusion._measure import kernel_pays
from cnnlab.fusion._stem import StemFunction, fits_conv, fits_pool, kernel_available

_NAMES = {nn.Conv2d: "conv", nn.BatchNorm2d: "batchnorm", nn.MaxPool2d: "max-pool", nn.ReLU: "relu"}


class FusedBlock(nn.Sequential):
    """A conv block whose leading layers run as one op on image batches (see the module doc)."""

    def __init__(self, *layers: nn.Module, native: bool, memory_format: torch.memory_format):
        super().__init__(*layers)
        self.span = block_span(self)
        self.native = native and self.span > 0
        self.has_batchnorm = _folds(layers)
        self.memory_format = memory_format  # the layout the rest of the model expects

    def describe(self) -> str:
        if not self.native:
            return "conv, batchnorm folded into one conv"
        names = ", ".join(_NAMES[type(layer)] for layer in list(self)[: self.span])
        return f"{names} as the native kernel"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _takes(x):
            return super().forward(x)
        conv = self[0]
        if self.has_batchnorm:
            weight, bias = fold_batchnorm(conv, self[1], x)
        else:
            weight, bias = conv.weight, conv.bias
        if self.native:
            out, rest = self._kernel(x, weight, bias), list(self)[self.span :]
        else:
            # Strides as the model's own conv weights have them: PyTorch picks the output's
            # layout from them, and a 1-channel kernel's would read as NCHW.
            weight = torch.empty_like(weight, memory_format=self.memory_format).copy_(weight)
            out = torch.nn.functional.conv2d(x, weight, bias, padding=conv.padding)
            rest = list(self)[2:]  # conv and batchnorm done
        for layer in rest:
            out = layer(out)
        return out

    def _kernel(self, x, weight, bias) -> torch.Tensor:
        dtype = torch.float32
        if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16:
            dtype = torch.bfloat16  # what autocast's conv would have handed the next layer
        train = torch.is_grad_enabled() and (
            weight.requires_grad or bias is not None and bias.requires_grad
        )
        relu = type(self[self.span - 1]) is nn.ReLU
        out = StemFunction.apply(x, weight, bias, self[0].padding[0], relu, dtype, train)
        return out.contiguous(memory_format=self.memory_format)  # no copy for channels_last


def _takes(x: torch.Tensor) -> bool:
    """Image batches: fp32 on the CPU, needing no gradient."""
    cpu_fp32 = x.device.type == "cpu" and x.dtype == torch.float32
    return cpu_fp32 and x.dim() == 4 and not x.requires_grad


def _folds(layers: list[nn.Module]) -> bool:
    """The block starts with a conv the fold takes, then BatchNorm over its channels."""
    return len(layers) > 1 and fits_conv(layers[0]) and foldable(layers[1], layers[0])


def block_span(block: nn.Module) -> int:
    """How many leading layers of `block` the kernel replaces: conv, [batchnorm], 2x2 max-pool,
    [relu]; 0 when the block does not start that way or its conv exceeds the kernel."""
    layers = list(block) if isinstance(block, nn.Sequential) else []
    if not layers or not fits_conv(layers[0]):
        return 0
    at = 2 if _folds(layers) else 1
    if len(layers) <= at or not fits_pool(layers[at]):
        return 0
    return at + 2 if len(layers) > at + 1 and type(layers[at + 1]) is nn.ReLU else at + 1


def fuse(
    model: nn.Module,
    memory_format: torch.memory_format | None,
    probe: tuple[Sequence[int], torch.dtype | None] | None = None,
    native: bool | None = None,
) -> tuple[str, ...]:
    """Swap the block of `model` that sees the images for a FusedBlock if it fits; returns what
    runs fused, one line per block ("features.0: conv, max-pool, relu as the native kernel"),
    () when nothing does. `memory_format` is the layout the model runs in; None undoes a
    fusion. Where the kernel does not fit (no 2x2 max-pool after the conv), cannot be built
    (no C compiler: one warning) or, given `probe` (the run's input shape and autocast dtype),
    is measured slower than PyTorch's ops on this machine (fusion._measure), a block whose
    conv is followed by BatchNorm still folds it into the conv in PyTorch; one without gains
    nothing and stays as it is. `native` decides instead of the measurement (a resumed run
    keeps the way it started with): True runs the kernel where it fits and loads, False
    PyTorch's ops."""
    found = _first_block(model)
    if found is None:
        return ()
    parent, name, block = found
    layers, span = list(block), block_span(block)
    if memory_format is None or not (span or _folds(layers)):
        if isinstance(block, FusedBlock):
            parent._modules[name] = nn.Sequential(*layers)
        return ()
    kernel = bool(span) and native is not False and kernel_available()
    if kernel and native is None and probe is not None:
        make = functools.partial(_timed_block, memory_format=memory_format)
        kernel = kernel_pays(layers[:span], make, probe[0], memory_format, probe[1])
    if not kernel and not _folds(layers):
        return ()
    fused = FusedBlock(*layers, native=kernel, memory_format=memory_format)
    fused.train(block.training)
    parent._modules[name] = fused
    return (f"{_path(model, fused)}: {fused.describe()}",)


def _timed_block(layers: Sequence[nn.Module], native: bool, memory_format) -> nn.Module:
    """The span as the run would have it: the kernel, BatchNorm folded in PyTorch, or plain."""
    if native or _folds(list(layers)):
        return FusedBlock(*layers, native=native, memory_format=memory_format)
    return nn.Sequential(*layers)


def _first_block(model: nn.Module) -> tuple[nn.Module, str, nn.Sequential] | None:
    """The Sequential whose first layer is the model's first Conv2d, and where it hangs."""
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Sequential) and len(child) and child[0] is first_conv:
                return parent, name, child
    return None


def _path(model: nn.Module, module: nn.Module) -> str:
    return next(name for name, m in model.named_modules() if m is module)
