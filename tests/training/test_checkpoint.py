"""Checkpoints: a fit cut after an epoch and resumed from its checkpoint gives the numbers of a fit
never stopped, bit for bit; the file is written whole or not at all, and a file that is not this
fit's own is refused in one line."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from cnnlab.data import make_splits
from cnnlab.models import create_model
from cnnlab.training import (
    Callback,
    Checkpointer,
    CheckpointError,
    fit,
    load_checkpoint,
    seed_everything,
)
from cnnlab.training._checkpoint import FORMAT, rng_state, save_checkpoint, set_rng_state

IDENTITY = {"run": "r1", "config": "c1", "data": "d1"}
EXACT = ["train.threads=1", "train.epochs=4"]


class CutAt(Callback):
    """Stands in for Ctrl-C at the start of an epoch."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_start(self, state):
        if state.epoch == self.epoch:
            raise KeyboardInterrupt


class Seen(Callback):
    """What a callback of the resumed fit observes."""

    def __init__(self):
        self.epochs, self.resumed_with = [], None

    def on_resume(self, state):
        self.resumed_with = [m.epoch for m in state.history]

    def on_epoch_end(self, state, metrics):
        self.epochs.append(metrics.epoch)


@pytest.fixture(scope="module")
def small_splits(fmnist):
    """512 training images (8 batches: 7 steps per epoch still end mid-pass), 256 validation and
    256 test: an exact comparison needs no more, and bf16, emulated on a CPU without it, is
    slow per image."""
    splits = make_splits(fmnist, val_fraction=0.1, train_limit=512, seed=42)
    splits.val_x, splits.val_y = splits.val_x[:256], splits.val_y[:256]
    splits.test_x, splits.test_y = splits.test_x[:256], splits.test_y[:256]
    return splits


def fresh(cfg):
    seed_everything(cfg.train.seed)  # as the runner builds a model: initial weights by seed
    return create_model(cfg.model)


def cut_and_resume(cfg, splits, path, cut_at=3, callbacks=()):
    with pytest.raises(KeyboardInterrupt):
        fit(fresh(cfg), splits, cfg.train, [Checkpointer(path, IDENTITY), CutAt(cut_at)])
    model = fresh(cfg)
    saved = load_checkpoint(path, IDENTITY, model)
    assert saved["epoch"] == cut_at - 1
    return fit(model, splits, cfg.train, [*callbacks, Checkpointer(path, IDENTITY)], resume=saved)


def figures(result):
    epochs = [
        (m.train_loss, m.val_loss, m.val_accuracy, m.lr, m.images_seen) for m in result.history
    ]
    return epochs, result.test_loss, result.test_accuracy, result.best_epoch, result.stop_reason


SETTINGS = {
    "fp32": ["train.precision=fp32"],
    "bf16": ["train.precision=bf16"],
    "average, best weights, dropout": [
        "train.precision=fp32",
        "train.ema=0.9",
        "train.restore_best=true",
        "model.dropout=0.3",
    ],
    "onecycle, augmentation": [
        "train.precision=fp32",
        "train.scheduler=onecycle",
        "train.flip=true",
        "train.crop_padding=2",
        "train.erase=0.5",
    ],
    "plateau, sgd, part passes": [
        "train.precision=fp32",
        "train.scheduler=plateau",
        "train.optimizer=sgd",
        "train.lr=0.05",
        "train.steps_per_epoch=7",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("setting", SETTINGS.values(), ids=SETTINGS.keys())
def test_a_resumed_fit_gives_the_uncut_fits_numbers_bit_for_bit(
    setting, tiny_cfg, small_splits, tmp_path
):
    cfg = tiny_cfg(*EXACT, *setting)
    uncut = fit(fresh(cfg), small_splits, cfg.train)
    seen = Seen()
    resumed = cut_and_resume(cfg, small_splits, tmp_path / "last.pt", callbacks=[seen])
    assert figures(resumed) == figures(uncut)
    assert seen.resumed_with == [1, 2] and seen.epochs == [3, 4]  # epochs 1-2 are not rerun


@pytest.mark.slow
@pytest.mark.usefixtures("c_compiler")
def test_a_resumed_fit_runs_its_first_block_the_way_it_started(
    tiny_cfg, small_splits, tmp_path, monkeypatch
):
    """Whether the native kernel beats PyTorch's ops is measured in each process, and the two
    round differently: a resumed fit keeps the way its checkpoint records, even where a new
    measurement would choose the other."""
    import cnnlab.fusion._blocks as blocks  # where fit's fuse looks the measurement up

    cfg = tiny_cfg(*EXACT, "train.precision=fp32")
    monkeypatch.setattr(blocks, "kernel_pays", lambda *args: True)
    uncut = fit(fresh(cfg), small_splits, cfg.train)
    assert any("native kernel" in line for line in uncut.compute.fused)
    with pytest.raises(KeyboardInterrupt):
        fit(
            fresh(cfg),
            small_splits,
            cfg.train,
            [Checkpointer(tmp_path / "c.pt", IDENTITY), CutAt(3)],
        )
    model = fresh(cfg)
    saved = load_checkpoint(tmp_path / "c.pt", IDENTITY, model)
    assert saved["native_kernel"] is True
    monkeypatch.setattr(blocks, "kernel_pays", lambda *args: False)  # measured again: no kernel
    resumed = fit(model, small_splits, cfg.train, resume=saved)
    assert resumed.compute.fused == uncut.compute.fused
    assert figures(resumed) == figures(uncut)
    # Without a checkpoint, the same fit would now take PyTorch's ops.
    assert not fit(fresh(cfg), small_splits, cfg.train).compute.fused


@pytest.mark.slow
def test_early_stopping_goes_on_counting_where_it_was_cut(tiny_cfg, tiny_splits, tmp_path):
    # Epoch 8 is the first without improvement, epoch 9 the second: the cut falls between.
    cfg = tiny_cfg(*EXACT, "train.epochs=10", "train.lr=0.003", "train.early_stopping=2")
    uncut = fit(fresh(cfg), tiny_splits, cfg.train)
    assert uncut.stop_reason and uncut.epochs_run == 9
    resumed = cut_and_resume(cfg, tiny_splits, tmp_path / "last.pt", cut_at=uncut.epochs_run)
    assert figures(resumed) == figures(uncut)


def test_a_fit_cut_after_its_last_epoch_only_tests(tiny_cfg, tiny_splits, tmp_path):
    """Killed between the last epoch and the test: the resumed fit trains nothing more."""

    class CutAtTheEnd(Callback):
        def on_fit_end(self, state, result):
            raise KeyboardInterrupt

    cfg = tiny_cfg(*EXACT, "train.epochs=2", "train.precision=fp32")
    path = tmp_path / "last.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(fresh(cfg), tiny_splits, cfg.train, [Checkpointer(path, IDENTITY), CutAtTheEnd()])
    model = fresh(cfg)
    seen = Seen()
    result = fit(
        model, tiny_splits, cfg.train, [seen], resume=load_checkpoint(path, IDENTITY, model)
    )
    assert seen.epochs == [] and result.epochs_run == 2 and result.test_accuracy > 0.3


def test_a_kill_during_the_write_leaves_the_last_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"format": FORMAT, "epoch": 1}, path)

    def dies_half_way(data, f):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"format": FORMAT, "epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"format": FORMAT, "epoch": 1}
    assert os.listdir(tmp_path) == ["last.pt"]  # no temporary file left behind


def test_every_generator_comes_back(tmp_path):
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    np.random.normal()  # a cached Gaussian, which numpy's state carries too
    path = tmp_path / "rng.pt"
    save_checkpoint(rng_state(torch.device("cpu")), path)
    expected = torch.rand(3), np.random.normal(size=3), random.random()
    set_rng_state(torch.load(path, weights_only=True), torch.device("cpu"))
    got = torch.rand(3), np.random.normal(size=3), random.random()
    assert torch.equal(got[0], expected[0]) and (got[1] == expected[1]).all()
    assert got[2] == expected[2]


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory, tiny_cfg, small_splits):
    """A cnnlab checkpoint of a 1-epoch fit, and the config it was written for."""
    cfg = tiny_cfg("train.epochs=1")
    path = tmp_path_factory.mktemp("ckpt") / "last.pt"
    fit(fresh(cfg), small_splits, cfg.train, [Checkpointer(path, IDENTITY)])
    return path, cfg


def _rewritten(path, tmp_path, change):
    data = torch.load(path, weights_only=True)
    change(data)
    out = tmp_path / "last.pt"
    torch.save(data, out)
    return out


def _foreign_shape(data):
    data["model"]["head.3.weight"] = torch.zeros(5, 32)


BAD = {
    "corrupt": (lambda p, tmp: _write(tmp, b"\x00garbage" * 10), "damaged or not a torch file"),
    "truncated": (
        lambda p, tmp: _write(tmp, p.read_bytes()[:2000]),
        "damaged or not a torch file: PytorchStreamReader failed",
    ),
    "a plain state_dict": (
        lambda p, tmp: _save(tmp, {"w": torch.zeros(2)}),
        "not a cnnlab checkpoint",
    ),
    "a pickled object": (
        lambda p, tmp: _save(tmp, {"format": FORMAT, "x": torch.nn.Linear(1, 1)}),
        "not a readable checkpoint (it holds objects besides tensors, numbers and strings",
    ),
    "a later version": (
        lambda p, tmp: _rewritten(p, tmp, lambda d: d.update(version=99)),
        "checkpoint version 99, expected 1",
    ),
    "another run's": (
        lambda p, tmp: _rewritten(p, tmp, lambda d: d["identity"].update(run="r2")),
        "written for run 'r2', expected run 'r1'",
    ),
    "another model's": (
        lambda p, tmp: _rewritten(p, tmp, _foreign_shape),
        "head.3.weight has shape [5, 32] in the checkpoint, expected [10, 32]",
    ),
    "incomplete": (
        lambda p, tmp: _rewritten(p, tmp, lambda d: d.pop("optimizer")),
        "incomplete checkpoint (no optimizer)",
    ),
    "missing": (lambda p, tmp: tmp / "none.pt", "no checkpoint"),
}


def _write(tmp, data: bytes):
    (tmp / "last.pt").write_bytes(data)
    return tmp / "last.pt"


def _save(tmp, obj):
    torch.save(obj, tmp / "last.pt")
    return tmp / "last.pt"


@pytest.mark.parametrize("make, message", BAD.values(), ids=BAD.keys())
def test_a_checkpoint_not_this_fits_own_is_refused_in_one_line(
    make, message, real_checkpoint, tmp_path
):
    path, cfg = real_checkpoint
    bad = make(path, tmp_path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(bad, IDENTITY, fresh(cfg))
    text = str(caught.value)
    assert message in text and "\n" not in text and text.startswith(str(bad))


def test_the_real_checkpoint_loads_with_weights_only(real_checkpoint):
    path, cfg = real_checkpoint
    saved = load_checkpoint(path, IDENTITY, fresh(cfg))
    assert saved["format"] == FORMAT and saved["epoch"] == 1 and saved["identity"] == IDENTITY
