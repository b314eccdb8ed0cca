"""The native kernel: conv (stride 1, zero padding), 2x2 max-pool and [relu] in one CPU pass.

On the study's model the first block is a third of a bf16 training step in PyTorch, where conv,
max-pool and relu each write a full-size map and max-pool keeps int64 indices; `_stem.c`
computes the pooled map directly and keeps a uint8 window position per value. StemFunction is
the autograd op; `fusion._blocks` decides where it runs. Outputs and gradients are those of
PyTorch's ops in fp32 up to rounding; a test holds the two together.
"""

from __future__ import annotations

import ctypes

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from cnnlab.fusion._native import load_library

MAX_WEIGHTS = 75  # per output channel (in_channels * k * k) the kernel's backward is built for
_WIDE = 64  # the kernel walks output channels 64 at a time; weights are zero-padded to that

_P, _I = ctypes.c_void_p, ctypes.c_int


def _library() -> ctypes.CDLL | None:
    lib = load_library("_stem.c")
    if lib is not None and lib.stem_forward.argtypes is None:
        lib.stem_forward.argtypes = [_P] * 5 + [_I] * 9
        lib.stem_backward.argtypes = [_P] * 4 + [_I] * 8
    return lib


def kernel_available() -> bool:
    """True when the kernel is built and loaded here (else one warning said why not)."""
    return _library() is not None


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


class StemFunction(torch.autograd.Function):
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


def fits_conv(conv: nn.Module) -> bool:
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


def fits_pool(pool: nn.Module) -> bool:
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
