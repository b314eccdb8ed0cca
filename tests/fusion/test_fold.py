"""BatchNorm folded into the conv before it: the same outputs, gradients and running statistics
as PyTorch's BatchNorm, alone and inside the fused first block."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.fusion import FusedBlock, _stem, fuse
from cnnlab.fusion._fold import fold_batchnorm


def conv_bn(cin=1, cout=16, k=3, pad=1, bias=False, **bn_args):
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, k, padding=pad, bias=bias)
    bn = nn.BatchNorm2d(cout, **bn_args)
    if bn.affine:  # away from the defaults (1, 0), with some negative scales
        with torch.no_grad():
            bn.weight.uniform_(-1.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    return conv, bn


def grads(*modules):
    return [p.grad.clone() for m in modules for p in m.parameters()]


@pytest.mark.parametrize(
    "cin,k,pad,bias,bn_args",
    [
        (1, 3, 1, False, {}),  # the study's first block
        (3, 5, 0, True, {}),  # colour images, no padding, a conv bias that BatchNorm cancels
        (2, 3, 1, False, {"momentum": None}),  # a cumulative average of the statistics
        (1, 3, 1, False, {"affine": False}),
    ],
)
def test_folded_conv_equals_conv_then_batchnorm_in_training(cin, k, pad, bias, bn_args):
    conv, bn = conv_bn(cin, 16, k, pad, bias, **bn_args)
    conv2, bn2 = copy.deepcopy(conv), copy.deepcopy(bn)
    x = torch.randn(6, cin, 12, 12) * 2 + 0.5
    for _ in range(2):  # the second batch starts from the first one's running statistics
        ref = bn(conv(x))
        weight, b = fold_batchnorm(conv2, bn2, x)
        out = F.conv2d(x, weight, b, padding=pad)
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
        g = torch.randn_like(ref)
        (ref * g).sum().backward()
        (out * g).sum().backward()
        for a, r in zip(grads(conv2, bn2), grads(conv, bn), strict=True):
            torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4)
        x = torch.randn(6, cin, 12, 12)
    torch.testing.assert_close(bn2.running_mean, bn.running_mean)
    torch.testing.assert_close(bn2.running_var, bn.running_var)
    assert bn2.num_batches_tracked == bn.num_batches_tracked == 2


def test_in_eval_mode_the_running_statistics_are_folded_and_not_changed():
    conv, bn = conv_bn()
    bn(conv(torch.randn(8, 1, 10, 10)))  # running statistics away from (0, 1)
    conv.eval(), bn.eval()
    before = bn.running_var.clone(), bn.num_batches_tracked.clone()
    x = torch.randn(4, 1, 10, 10)
    weight, b = fold_batchnorm(conv, bn, x)
    torch.testing.assert_close(F.conv2d(x, weight, b, padding=1), bn(conv(x)))
    assert torch.equal(bn.running_var, before[0]) and bn.num_batches_tracked == before[1]


def test_a_flat_batch_gives_zero_variance_not_a_negative_one():
    """Constant images: the patch covariance is zero up to rounding, and sqrt must not see < 0."""
    conv, bn = conv_bn(pad=0)
    x = torch.full((4, 1, 8, 8), 3.0)
    weight, b = fold_batchnorm(conv, bn, x)
    assert torch.isfinite(weight).all() and torch.isfinite(b).all()
    torch.testing.assert_close(
        F.conv2d(x, weight, b), bn(copy.deepcopy(conv)(x)), atol=1e-3, rtol=0
    )


def block_pair(native=True):
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.MaxPool2d(2)]
    layers.append(nn.ReLU())
    with torch.no_grad():
        layers[1].weight.uniform_(-1.5, 1.5)
    plain = nn.Sequential(*layers)
    fused = nn.Sequential(copy.deepcopy(plain))
    fuse(fused, torch.contiguous_format)
    assert isinstance(fused[0], FusedBlock) and fused[0].native == native
    return fused, plain


@pytest.mark.usefixtures("c_compiler")
@pytest.mark.parametrize("native", [True, False])
def test_the_fused_block_with_batchnorm_matches_pytorchs_layers(native, monkeypatch):
    if not native:
        monkeypatch.setattr(_stem, "_library", lambda: None)
    fused, plain = block_pair(native)
    x = torch.randn(16, 1, 28, 28)
    out, ref = fused(x), plain(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    g = torch.randn_like(ref)
    (out * g).sum().backward()
    (ref * g).sum().backward()
    for a, r in zip(grads(fused), grads(plain), strict=True):
        torch.testing.assert_close(a, r, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(fused[0][1].running_var, plain[1].running_var)
    fused.eval(), plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(fused(x), plain(x), rtol=1e-4, atol=1e-4)


@pytest.mark.usefixtures("c_compiler")
def test_under_bf16_autocast_the_statistics_stay_in_full_precision():
    fused, plain = block_pair()
    x = torch.randn(16, 1, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fused(x)
    assert out.dtype == torch.bfloat16
    ref = plain(x)  # fp32 throughout
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(fused[0][1].running_var, plain[1].running_var)
