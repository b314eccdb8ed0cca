"""The fast path: bf16 autocast, channels_last, batch augmentation, threads, test-time flips."""

import pytest
import torch

from cnnlab.config import ConfigError, TrainConfig, load_config
from cnnlab.models import create_model
from cnnlab.training import Normalize, Runtime, evaluate, fit, seed_everything
from cnnlab.training._fast import Augment, cpu_has_native_bf16, resolve_precision

AUGMENTED = ["train.flip=true", "train.crop_padding=2", "train.erase=0.5"]


def train(cfg, splits):
    seed_everything(cfg.train.seed)
    return fit(create_model(cfg.model), splits, cfg.train)


@pytest.mark.slow
def test_bf16_and_fp32_reach_similar_accuracy(tiny_cfg, tiny_splits):
    fp32 = train(tiny_cfg("train.precision=fp32", "train.epochs=3"), tiny_splits)
    bf16 = train(tiny_cfg("train.precision=bf16", "train.epochs=3"), tiny_splits)
    assert (fp32.compute.precision, bf16.compute.precision) == ("fp32", "bf16")
    assert fp32.test_accuracy > 0.5 and bf16.test_accuracy > 0.5  # chance is 0.1
    # 1,000 test images: one point is 10 images; bf16 rounding moves a tiny run by a few.
    assert abs(fp32.test_accuracy - bf16.test_accuracy) < 0.06


@pytest.mark.slow
def test_fast_path_is_deterministic_for_a_seed(tiny_cfg, tiny_splits):
    overrides = [*AUGMENTED, "train.precision=bf16", "model.batchnorm=true"]
    a = train(tiny_cfg(*overrides), tiny_splits)
    b = train(tiny_cfg(*overrides), tiny_splits)
    assert [m.train_loss for m in a.history] == [m.train_loss for m in b.history]
    assert a.test_loss == b.test_loss


@pytest.mark.slow
@pytest.mark.usefixtures("c_compiler", "kernel_always")
def test_fused_stem_is_deterministic_and_learns_like_pytorchs_ops(tiny_cfg, tiny_splits):
    """The tiny cnn's first block (conv, max-pool, relu) runs as the native kernel."""
    a = train(tiny_cfg("train.precision=bf16", "train.epochs=3"), tiny_splits)
    b = train(tiny_cfg("train.precision=bf16", "train.epochs=3"), tiny_splits)
    off = train(
        tiny_cfg("train.precision=bf16", "train.epochs=3", "train.fused_stem=false"), tiny_splits
    )
    assert a.compute.fused == ("features.0: conv, max-pool, relu as the native kernel",)
    assert off.compute.fused == ()
    assert [m.train_loss for m in a.history] == [m.train_loss for m in b.history]
    assert a.test_loss == b.test_loss
    assert abs(a.test_accuracy - off.test_accuracy) < 0.06
    assert a.test_accuracy > 0.5


@pytest.mark.usefixtures("c_compiler", "kernel_always")
def test_batchnorm_folded_into_the_fused_block_learns_like_pytorchs_batchnorm(
    tiny_cfg, tiny_splits
):
    """With BatchNorm the first block still runs as one op: the same training, up to rounding."""
    overrides = ["train.precision=fp32", "train.epochs=2", "model.batchnorm=true"]
    fused = train(tiny_cfg(*overrides), tiny_splits)
    plain = train(tiny_cfg(*overrides, "train.fused_stem=false"), tiny_splits)
    assert fused.compute.fused == (
        "features.0: conv, batchnorm, max-pool, relu as the native kernel",
    )
    for a, b in zip(fused.history, plain.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=2e-3)
    assert abs(fused.test_accuracy - plain.test_accuracy) < 0.02


def test_augmented_run_learns(tiny_cfg, tiny_splits):
    result = train(tiny_cfg(*AUGMENTED, "train.epochs=3"), tiny_splits)
    assert result.test_accuracy > 0.5


def _augment(**keys):
    return Augment(TrainConfig(**keys), torch.Generator().manual_seed(0))


def test_flip_keeps_each_image_in_its_place(tiny_splits):
    images = tiny_splits.train_x[:64]
    out = _augment(flip=True).crop_flip(images)
    assert out.shape == images.shape and out.dtype == torch.uint8 and out.device == images.device
    same = (out == images).flatten(1).all(1)
    mirrored = (out == images.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all()  # so its label still applies
    assert mirrored.any() and same.any()


def test_crop_is_a_shifted_window_of_the_same_image(tiny_splits):
    images = tiny_splits.train_x[:16]
    out = _augment(crop_padding=2).crop_flip(images)
    assert out.shape == images.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(len(images)):
        windows = [padded[i, :, r : r + 28, c : c + 28] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_erasing_blanks_only_chosen_images(tiny_splits):
    x = Normalize(tiny_splits.mean, tiny_splits.std)(tiny_splits.train_x[:64])
    out = _augment(erase=0.5).erase(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    changed = (out != x).flatten(1).any(1)
    assert 0 < changed.sum() < 64
    assert (out[out != x] == 0).all()  # erased pixels become the training mean


def test_no_augmentation_is_the_identity(tiny_splits):
    images = tiny_splits.train_x[:8]
    augment = _augment()
    assert not augment.active
    assert augment.crop_flip(images) is images


def test_auto_precision_falls_back_to_fp32_without_native_bf16(monkeypatch, tiny_cfg, tiny_splits):
    import cnnlab.training._fast as fast

    cpu = torch.device("cpu")
    monkeypatch.setattr(fast, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", cpu) is None
    assert resolve_precision("bf16", cpu) == torch.bfloat16  # asked for, so given
    assert train(tiny_cfg("train.epochs=1"), tiny_splits).compute.precision == "fp32"
    monkeypatch.setattr(fast, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == torch.bfloat16
    assert resolve_precision("fp32", cpu) is None


@pytest.mark.parametrize(
    ("flags", "native"),
    [("fpu sse avx512f avx512_bf16", True), ("fpu amx_tile amx_bf16", True), ("fpu avx2", False)],
)
def test_bf16_detection_reads_cpu_flags(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert cpu_has_native_bf16(cpuinfo) is native


@pytest.mark.parametrize("model_cfg", [["model.name=cnn"], ["model.name=convnet"]])
def test_channels_last_evaluates_like_contiguous(model_cfg, tiny_splits):
    cfg = load_config(None, model_cfg)
    torch.manual_seed(0)
    model = create_model(cfg.model)
    norm = Normalize(tiny_splits.mean, tiny_splits.std)
    x, y = tiny_splits.test_x[:200], tiny_splits.test_y[:200]
    plain = evaluate(model, x, y, norm, 100, Runtime(torch.device("cpu")))
    model.to(memory_format=torch.channels_last)
    nhwc = evaluate(model, x, y, norm, 100, Runtime(torch.device("cpu"), channels_last=True))
    assert nhwc == pytest.approx(plain, abs=1e-4)
    assert evaluate(model, x, y, norm, 100) == pytest.approx(plain, abs=1e-4)  # layout inferred


def test_test_time_flips_average_both_views(tiny_splits):
    torch.manual_seed(0)
    model = create_model(load_config(None, ["model.name=convnet"]).model).eval()
    x = Normalize(tiny_splits.mean, tiny_splits.std)(tiny_splits.test_x[:8])
    runtime = Runtime(torch.device("cpu"), tta_flip=True)
    with torch.no_grad():
        expected = (model(x) + model(x.flip(-1))) / 2
        assert torch.allclose(runtime.logits(model, x), expected, atol=1e-5)


def test_threads_follow_the_config(tiny_cfg, tiny_splits):
    before = torch.get_num_threads()
    try:
        train(tiny_cfg("train.threads=1", "train.epochs=1"), tiny_splits)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "bad", ["train.erase=1.0", "train.crop_padding=-1", "train.precision=fp16"]
)
def test_fast_path_keys_are_checked(bad):
    with pytest.raises(ConfigError):
        load_config(None, [bad])


def test_an_unprepared_runtime_describes_its_path_with_nothing_fused():
    model = create_model(load_config(None, ["model.filters=4"]).model)
    path = Runtime.matching(model, torch.device("cpu")).path
    assert (path.device, path.precision, path.channels_last, path.fused) == (
        "cpu",
        "fp32",
        False,
        (),
    )
    assert path.describe() == "cpu, fp32, NCHW"
