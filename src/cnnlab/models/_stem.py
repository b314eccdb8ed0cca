"""The fused stem: a CNN's first conv block (conv, 2x2 max-pool, relu) as one native CPU kernel.

    use_fused_stem(model, torch.channels_last)  # -> blocks that will run fused (0: none fits,
                                                #    or no C compiler, with a warning)

On the study's model this block is a third of a bf16 training step in PyTorch, where conv,
max-pool and relu each write a full-size map and max-pool keeps int64 indices; `_stem.c`
computes the pooled map directly and keeps a uint8 window position per value. The module tree
and the state_dict do not change: a block is a `ConvBlock` (an nn.Sequential) either way, and the
kernel reads the block's own conv parameters. Outputs and gradients are those of PyTorch's ops
in fp32 up to rounding; a test holds the two together.
"""

from __future__ import annotations

import ctypes

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from cnnlab.models._native import load_library

MAX_WEIGHTS = 75  # per output channel (in_channels * k * k) the kernel's backward is built for
_WIDE = 64  # the kernel walks output channels 64 at a time; weights are zero-padded to that

_P, _I = ctypes.c_void_p, ctypes.c_int


def _library() -> ctypes.CDLL | None:
    lib = load_library("_stem.c")
    if lib is not None and lib.stem_forward.argtypes is None:
        lib.stem_forward.argtypes = [_P] * 5 + [_I] * 9
        lib.stem_backward.argtypes = [_P] * 4 + [_I] * 8
    return lib


def _ptr(t: torch.Tensor | None) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr() if t is not None else None)


def _width(cout: int) -> int:
    return -(-cout // _WIDE) * _WIDE


def _padded_params(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """[in*k*k + 1, cout rounded up to 64] fp32: each weight's row over channels, then the bias."""
    cout = weight.shape[0]
    table = weight.new_zeros(weight[0].numel() + 1, _width(cout), dtype=torch.float32)
    table[:-1, :cout] = weight.detach().reshape(cout, -1).t()
    if bias is not None:
        table[-1, :cout] = bias.detach()
    return table


class _StemFunction(torch.autograd.Function):
    """conv (stride 1, zero padding) -> max-pool 2 -> [relu] on a [N, C, H, W] fp32 CPU batch.

    Returns [N, cout, H', W'] in `dtype`, stored channels last. No gradient for the input.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, padding: int, relu: bool, dtype, train: bool):
        lib = _library()
        x = F.pad(x, (padding,) * 4) if padding else x
        x = x.contiguous()
        n, cin, h, w = x.shape
        cout, k = weight.shape[0], weight.shape[-1]
        params = _padded_params(weight, bias)
        out = torch.empty(n, (h - k + 1) // 2, (w - k + 1) // 2, cout, dtype=dtype)
        idx = torch.empty(out.shape, dtype=torch.uint8) if train else None
        bf16 = int(dtype == torch.bfloat16)
        threads = torch.get_num_threads()
        bias_row = params[-1]
        lib.stem_forward(_ptr(x), _ptr(params), _ptr(bias_row), _ptr(out), _ptr(idx),
                         n, cin, h, w, k, cout, bf16, int(relu), threads)  # fmt: skip
        if train:
            ctx.save_for_backward(x, idx)
            ctx.meta = (weight.shape, bias is not None, dtype)
        return out.permute(0, 3, 1, 2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, idx = ctx.saved_tensors
        shape, has_bias, dtype = ctx.meta
        n, cin, h, w = x.shape
        cout, k = shape[0], shape[-1]
        g = grad.permute(0, 2, 3, 1).to(dtype).contiguous()  # the kernel's [N, H', W', C] layout
        table = torch.empty(cin * k * k + 1, _width(cout))
        code = _library().stem_backward(_ptr(x), _ptr(g), _ptr(idx), _ptr(table),
                                        n, cin, h, w, k, cout, int(dtype == torch.bfloat16),
                                        torch.get_num_threads())  # fmt: skip
        if code:
            raise MemoryError("fused stem: no memory for the per-thread gradient sums")
        grad_w = table[:-1, :cout].t().reshape(shape)
        grad_b = table[-1, :cout].clone() if has_bias else None
        return None, grad_w, grad_b, None, None, None, None


def stem_span(block: nn.Module) -> int:
    """How many leading layers of `block` the kernel replaces: 3 (conv, max-pool 2, relu), 2
    (conv, max-pool 2), or 0 when the block does not start that way or exceeds the kernel."""
    layers = list(block) if isinstance(block, nn.Sequential) else []
    if len(layers) < 2 or not (_fits_conv(layers[0]) and _fits_pool(layers[1])):
        return 0
    return 3 if len(layers) > 2 and type(layers[2]) is nn.ReLU else 2


def _fits_conv(conv: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and isinstance(conv.padding, tuple)
        and len(set(conv.padding)) == 1
        and conv.kernel_size[0] == conv.kernel_size[1]
        and conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1] <= MAX_WEIGHTS
    )


def _fits_pool(pool: nn.Module) -> bool:
    def pair(v):
        return v if isinstance(v, tuple) else (v, v)

    return (
        type(pool) is nn.MaxPool2d
        and pair(pool.kernel_size) == (2, 2)
        and pair(pool.stride) == (2, 2)
        and pair(pool.padding) == (0, 0)
        and pair(pool.dilation) == (1, 1)
        and not pool.ceil_mode
        and not pool.return_indices
    )


class ConvBlock(nn.Sequential):
    """A conv block; once use_fused_stem has set `fused_stem` (the memory format to hand on), its
    leading conv, max-pool and relu run as the native kernel whenever the input allows: an fp32
    CPU batch that needs no gradient, i.e. the images entering the first block. Other inputs
    take the layers one by one. Forward hooks on the replaced layers do not fire when fused.
    """

    fused_stem: torch.memory_format | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused_stem is None or not _takes(x):
            return super().forward(x)
        span = stem_span(self)
        conv = self[0]
        dtype = torch.float32
        if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16:
            dtype = torch.bfloat16  # what autocast's conv would have handed the next layer
        train = torch.is_grad_enabled() and any(p.requires_grad for p in conv.parameters())
        out = _StemFunction.apply(
            x, conv.weight, conv.bias, conv.padding[0], span == 3, dtype, train
        )
        out = out.contiguous(memory_format=self.fused_stem)  # no copy for channels_last
        for layer in list(self)[span:]:
            out = layer(out)
        return out


def _takes(x: torch.Tensor) -> bool:
    cpu_fp32 = x.device.type == "cpu" and x.dtype == torch.float32
    return cpu_fp32 and x.dim() == 4 and not x.requires_grad


def use_fused_stem(model: nn.Module, memory_format: torch.memory_format | None) -> int:
    """Run the first ConvBlock of `model` as the native kernel if it fits, handing its output on
    in `memory_format` (the model's layout); None switches the kernel off. Returns how many
    blocks will use it: 1, or 0 when it does not fit or the kernel cannot be built here (with a
    warning)."""
    blocks = [m for m in model.modules() if isinstance(m, ConvBlock)]
    # Only the first block sees the images, the one input that never needs a gradient.
    fitting = blocks[:1] if memory_format is not None and blocks and stem_span(blocks[0]) else []
    if fitting and _library() is None:
        fitting = []
    for block in blocks:
        block.fused_stem = memory_format if block in fitting else None
    return len(fitting)
