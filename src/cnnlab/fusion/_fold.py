"""BatchNorm folded into the conv before it, in training too, for a block that sees the images.

    weight, bias = fold_batchnorm(conv, bn, images)   # bn(conv(images)) == conv'(images)

In training mode BatchNorm normalises each channel of the conv's output by that batch's mean and
variance, then scales and shifts it: per channel an affine map, so bn(conv(x)) is one conv with
the weights scaled by s = gamma / sqrt(var + eps) and the bias beta + s * (bias - mean). The
batch statistics need no pass over the conv's output: each output is w . p over the input
patches p, so its mean is w . E[p] and its variance w^T Cov(p) w, and E[p] and Cov(p) (one
small matrix: in_channels * k * k on a side, 9 x 9 for the study's first block) come from the
images alone. Gradients flow through s and the bias into the conv's weights, gamma and beta
exactly as through BatchNorm's own backward, since it is the same function of them; the
running statistics are updated as BatchNorm updates them. This holds only where the input
needs no gradient (the images), which is where the fused first block runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def foldable(bn: nn.Module, conv: nn.Conv2d) -> bool:
    """A plain BatchNorm2d over the conv's output channels (the conv: fusion._stem.fits_conv)."""
    return type(bn) is nn.BatchNorm2d and bn.num_features == conv.out_channels


def fold_batchnorm(
    conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (weight, bias) of one conv equal to bn(conv(x)), differentiable in both modules'
    parameters; in training mode bn's running statistics take this batch's, as bn would."""
    # Statistics in float64 whatever autocast says: a few hundred values, and the variance is a
    # difference of two sums that fp32 (let alone bf16) would round away on a flat batch.
    with torch.autocast(x.device.type, enabled=False):
        weight = conv.weight.reshape(conv.out_channels, -1).double()
        bias = conv.bias.double() if conv.bias is not None else 0.0
        if bn.training or not bn.track_running_stats:
            mean, var = _batch_moments(conv, x, weight)
            mean = mean + bias
            if bn.training and bn.track_running_stats:
                _update_running(bn, mean, var, count=_positions(conv, x))
        else:
            mean, var = bn.running_mean.double(), bn.running_var.double()
        gamma = bn.weight.double() if bn.affine else 1.0
        beta = bn.bias.double() if bn.affine else 0.0
        scale = gamma / torch.sqrt(var + bn.eps)
        folded_w = (weight * scale[:, None]).reshape(conv.weight.shape)
        folded_b = beta + scale * (bias - mean)
    return folded_w.to(conv.weight.dtype), folded_b.to(conv.weight.dtype)


def _batch_moments(conv: nn.Conv2d, x: torch.Tensor, weight: torch.Tensor):
    """Per output channel, the mean (bias left out) and biased variance of conv(x) over the
    batch and positions, from the input patches' mean and covariance (stride 1)."""
    with torch.no_grad():
        shift = x.mean()
        patches = _patches(x - shift, conv.kernel_size[0], conv.padding[0], -shift)
        count = patches.shape[1]  # [in*k*k, positions]
        mean_p = patches.sum(1).double() / count
        second = (patches @ patches.T).double() / count
        cov = second - torch.outer(mean_p, mean_p)
        mean_p = mean_p + shift.double()
    mean = weight @ mean_p
    var = ((weight @ cov) * weight).sum(1).clamp_min(0.0)
    return mean, var


def _patches(x: torch.Tensor, k: int, padding: int, fill: torch.Tensor) -> torch.Tensor:
    """Every k x k patch of the batch padded with `fill`, one column per position.

    The k*k shifted views stacked, which is im2col written out: 3x faster here than F.unfold.
    The caller subtracts the batch mean from the images and the padding alike: one constant
    shifts every patch and leaves the covariance as it is, and keeps fp32's sums of squares
    from swamping the variance when the mean is large.
    """
    padded = F.pad(x.float(), (padding,) * 4, value=float(fill))
    n, c, h, w = padded.shape
    oh, ow = h - k + 1, w - k + 1
    views = [
        padded[:, ch, i : i + oh, j : j + ow] for ch in range(c) for i in range(k) for j in range(k)
    ]
    return torch.stack(views).reshape(c * k * k, n * oh * ow)


def _positions(conv: nn.Conv2d, x: torch.Tensor) -> int:
    h, w = x.shape[-2:]
    k, p = conv.kernel_size[0], conv.padding[0]
    return x.shape[0] * (h + 2 * p - k + 1) * (w + 2 * p - k + 1)


def _update_running(bn: nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor, count: int):
    """BatchNorm's own update: momentum (or a cumulative average when it is None) towards the
    batch mean and the unbiased batch variance."""
    with torch.no_grad():
        bn.num_batches_tracked.add_(1)
        factor = bn.momentum if bn.momentum is not None else 1.0 / bn.num_batches_tracked.item()
        unbiased = var * count / max(count - 1, 1)
        bn.running_mean.lerp_(mean.to(bn.running_mean.dtype), factor)
        bn.running_var.lerp_(unbiased.to(bn.running_var.dtype), factor)
