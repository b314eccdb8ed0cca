"""The fused stem kernel against PyTorch's conv, max-pool and relu, and how it is built and used."""

import copy
import logging

import pytest
import torch
from torch import nn

from cnnlab.config import CnnConfig, ConvnetConfig
from cnnlab.fusion import FusedBlock, _native, _stem, fuse
from cnnlab.models import create_model

pytestmark = pytest.mark.usefixtures("c_compiler")  # the kernel is built on first use


def blocks(cin, cout, k, pad, relu, bias):
    """The same layers twice: a FusedBlock and a plain Sequential with the same weights."""
    layers = [nn.Conv2d(cin, cout, k, padding=pad, bias=bias), nn.MaxPool2d(2)]
    layers += [nn.ReLU()] if relu else []
    plain = nn.Sequential(*layers)
    fused = nn.Sequential(nn.Sequential(*copy.deepcopy(layers)))
    assert len(fuse(fused, torch.contiguous_format)) == 1
    assert isinstance(fused[0], FusedBlock) and fused[0].native
    return fused, plain


def outputs_and_grads(block, x, grad):
    block.zero_grad(set_to_none=True)
    out = block(x)
    (out.float() * grad).sum().backward()
    return out, [p.grad.clone() for p in block.parameters()]


# (in channels, out channels, kernel, padding, image side, relu, bias): the study's first block,
# a channel count that is no multiple of 16, more than 64 channels, odd maps that the pool
# floors, an even kernel, the largest kernel (75 weights per channel) and no bias.
SHAPES = [
    (1, 64, 3, 1, 28, True, True),
    (3, 20, 3, 0, 11, False, True),
    (1, 130, 5, 2, 16, True, False),
    (2, 16, 4, 1, 9, True, True),
    (3, 33, 5, 2, 13, False, False),
]


@pytest.mark.parametrize("cin,cout,k,pad,side,relu,bias", SHAPES)
def test_fused_block_matches_pytorch_ops_in_fp32(cin, cout, k, pad, side, relu, bias):
    torch.manual_seed(0)
    fused, plain = blocks(cin, cout, k, pad, relu, bias)
    x = torch.randn(5, cin, side, side)
    grad = torch.randn_like(plain(x))
    out, grads = outputs_and_grads(fused, x, grad)
    ref, ref_grads = outputs_and_grads(plain, x, grad)
    assert out.shape == ref.shape and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


def test_under_bf16_autocast_the_output_is_the_fp32_result_rounded():
    torch.manual_seed(0)
    fused, _ = blocks(1, 64, 3, 1, True, True)
    x = torch.randn(8, 1, 28, 28)
    full = fused(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = fused(x)
    assert half.dtype == torch.bfloat16
    assert torch.equal(half, full.to(torch.bfloat16))


def test_ties_go_to_the_first_window_position_and_relu_cuts_the_gradient():
    """A blank image makes the four conv outputs under each window equal (the bias, away from
    the zero padding); channels with a negative bias are cut by the relu."""
    fused, plain = blocks(1, 16, 3, 1, True, True)
    with torch.no_grad():
        for conv in (fused[0][0], plain[0]):
            conv.bias.copy_(torch.linspace(-1, 1, 16))
    x = torch.zeros(2, 1, 8, 8)
    x[:, :, 0, 0] = 1.0
    grad = torch.ones(2, 16, 4, 4)
    out, grads = outputs_and_grads(fused, x, grad)
    ref, ref_grads = outputs_and_grads(plain, x, grad)
    assert torch.equal(out, ref)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=0, atol=1e-6)
    assert (grads[1] == 0).any() and (grads[1] > 0).any()  # some channels cut, some not


def test_gradients_are_bitwise_repeatable():
    torch.manual_seed(0)
    fused, _ = blocks(1, 64, 3, 1, True, True)
    x = torch.randn(64, 1, 28, 28)
    grad = torch.randn(64, 64, 14, 14)
    first = outputs_and_grads(fused, x, grad)[1]
    second = outputs_and_grads(fused, x, grad)[1]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_an_input_that_needs_its_gradient_takes_pytorch_ops():
    fused, plain = blocks(1, 8, 3, 1, True, True)
    x = torch.randn(2, 1, 10, 10, requires_grad=True)
    fused(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "model,fused",
    [
        (CnnConfig(), 1),  # the study's model: the first block only (the second has 64 channels)
        (CnnConfig(activation="leaky_relu"), 1),  # conv and max-pool fused, the activation not
        (CnnConfig(activation="gelu"), 0),  # the activation sits between conv and max-pool
        (CnnConfig(batchnorm=True), 1),  # BatchNorm folded into the conv
        (CnnConfig(pool_size=3), 0),
        (ConvnetConfig(), 1),  # conv, BatchNorm, max-pool, relu
    ],
)
def test_which_models_use_the_kernel(model, fused):
    assert len(fuse(create_model(model), torch.channels_last)) == fused


@pytest.mark.parametrize(
    "model,how",
    [
        (
            CnnConfig(batchnorm=True),
            "features.0: conv, batchnorm, max-pool, relu as the native kernel",
        ),
        (
            ConvnetConfig(convs_per_stage=2),
            "features.0: conv, batchnorm folded into one conv",
        ),
        (
            CnnConfig(batchnorm=True, activation="gelu"),
            "features.0: conv, batchnorm folded into one conv",
        ),
    ],
)
def test_where_the_kernel_does_not_fit_batchnorm_is_folded_in_pytorch(model, how):
    torch.manual_seed(0)
    fused = create_model(model)
    plain = copy.deepcopy(fused)
    assert fuse(fused, torch.contiguous_format) == (how,)
    x = torch.randn(8, 1, 28, 28)
    torch.testing.assert_close(fused(x), plain(x), rtol=1e-4, atol=1e-4)


def test_a_fused_model_keeps_its_modules_weights_and_outputs():
    torch.manual_seed(0)
    model = create_model(CnnConfig()).to(memory_format=torch.channels_last)
    keys = list(model.state_dict())
    x = torch.randn(16, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        plain = model(x)
        assert fuse(model, torch.channels_last) == (
            "features.0: conv, max-pool, relu as the native kernel",
        )
        fused = model(x)
    assert list(model.state_dict()) == keys
    torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-4)
    assert fuse(model, None) == ()
    assert not any(isinstance(m, FusedBlock) for m in model.modules())


def test_without_the_library_every_block_takes_pytorch_ops(monkeypatch):
    monkeypatch.setattr(_stem, "_library", lambda: None)
    model = create_model(CnnConfig())
    assert fuse(model, torch.channels_last) == ()
    assert not any(isinstance(m, FusedBlock) for m in model.modules())
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_without_the_library_batchnorm_is_still_folded_into_the_conv(monkeypatch):
    monkeypatch.setattr(_stem, "_library", lambda: None)
    torch.manual_seed(0)
    model = create_model(CnnConfig(batchnorm=True))
    plain = copy.deepcopy(model)
    assert fuse(model, torch.contiguous_format) == (
        "features.0: conv, batchnorm folded into one conv",
    )
    x = torch.randn(8, 1, 28, 28)
    torch.testing.assert_close(model(x), plain(x), rtol=1e-4, atol=1e-5)


def test_the_library_is_built_once_per_machine(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path))
    assert _native.load_library.__wrapped__("_stem.c") is not None
    built = list((tmp_path / "native").iterdir())
    assert len(built) == 1 and built[0].suffix == ".so"
    stamp = built[0].stat().st_mtime_ns
    assert _native.load_library.__wrapped__("_stem.c") is not None
    assert list((tmp_path / "native").iterdir()) == built
    assert built[0].stat().st_mtime_ns == stamp


def test_a_failed_build_warns_and_leaves_no_file(monkeypatch, tmp_path, caplog):
    failing = tmp_path / "failing-cc"
    failing.write_text("#!/bin/sh\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", str(failing))
    with caplog.at_level(logging.WARNING):
        assert _native.load_library.__wrapped__("_stem.c") is None
    assert "could not build _stem.c" in caplog.text and "using PyTorch" in caplog.text
    assert not any((tmp_path / "native").iterdir())


def test_a_compile_error_leaves_no_partial_library(tmp_path):
    source = tmp_path / "broken.c"
    source.write_text("int f(void) { return }\n")
    target = tmp_path / "out" / "broken.so"
    target.parent.mkdir()
    with pytest.raises(_native.subprocess.CalledProcessError):
        _native.build(source, target, _native.compiler())
    assert list(target.parent.iterdir()) == []


def test_without_a_compiler_the_warning_says_so(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        assert _native.load_library.__wrapped__("_stem.c") is None
    assert "no C compiler" in caplog.text


@pytest.mark.slow
def test_the_kernel_shares_pytorchs_openmp_runtime():
    """A second OpenMP runtime would bring threads that fight PyTorch's pool for the cores.
    Checked in a fresh process: other libraries an earlier test loaded here (scikit-learn's
    own libgomp, through Optuna's importance evaluator) are not the kernel's doing."""
    import ast
    import subprocess
    import sys

    probe = (
        "from cnnlab.fusion import _stem\n"
        "assert _stem._library() is not None\n"
        "maps = open('/proc/self/maps').read().splitlines()\n"
        "print(sorted({l.split()[-1] for l in maps if 'gomp' in l.rsplit('/', 1)[-1]}))\n"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    runtimes = ast.literal_eval(found.stdout)  # a printed list of paths
    assert len(runtimes) == 1, runtimes


def test_a_compiler_without_openmp_builds_a_serial_kernel(monkeypatch, tmp_path):
    cc = tmp_path / "cc-without-openmp"
    real = _native.compiler()
    cc.write_text(
        f'#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && exit 1; done\nexec {real} "$@"\n'
    )
    cc.chmod(0o755)
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(cc))
    serial = _native.load_library.__wrapped__("_stem.c")
    assert serial is not None
    monkeypatch.setattr(_stem, "load_library", lambda name: serial)
    torch.manual_seed(0)
    fused, plain = blocks(1, 24, 3, 1, True, True)
    x = torch.randn(4, 1, 12, 12)
    grad = torch.randn(4, 24, 6, 6)
    out, grads = outputs_and_grads(fused, x, grad)
    ref, ref_grads = outputs_and_grads(plain, x, grad)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


def test_a_nan_weight_gives_nan_outputs_as_pytorch_does():
    """Divergence must stay visible: relu and max-pool pass a NaN on, in bf16 too."""
    fused, plain = blocks(1, 16, 3, 1, True, True)
    with torch.no_grad():
        for conv in (fused[0][0], plain[0]):
            conv.weight[3, 0, 1, 1] = float("nan")
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(fused(x).isnan(), plain(x).isnan())
    assert fused(x)[:, 3].isnan().all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fused(x)[:, 3].isnan().all()
