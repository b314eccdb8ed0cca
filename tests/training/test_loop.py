import math

import pytest
import torch

from cnnlab.models import create_model
from cnnlab.training import (
    OPTIMIZERS,
    SCHEDULERS,
    Callback,
    EarlyStopping,
    EpochMetrics,
    TrainingDiverged,
    TrainState,
    fit,
    seed_everything,
)


def train(cfg, splits, callbacks=()):
    seed_everything(cfg.train.seed)
    return fit(create_model(cfg.model), splits, cfg.train, list(callbacks))


def test_training_learns_and_reports_every_epoch(tiny_cfg, tiny_splits):
    result = train(tiny_cfg("train.epochs=3"), tiny_splits)
    assert [m.epoch for m in result.history] == [1, 2, 3]
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.test_accuracy > 0.5  # ten classes: chance is 0.1
    assert result.history[-1].images_seen == 3 * (1000 // 64) * 64
    assert result.history[0].lr > 0 and result.seconds > 0


def test_same_seed_same_run_other_seed_other_run(tiny_cfg, tiny_splits):
    a = train(tiny_cfg(), tiny_splits)
    b = train(tiny_cfg(), tiny_splits)
    c = train(tiny_cfg("train.seed=7"), tiny_splits)
    assert [m.train_loss for m in a.history] == [m.train_loss for m in b.history]
    assert a.test_loss == b.test_loss
    assert a.test_loss != c.test_loss


def test_course_epoch_of_fixed_steps(tiny_cfg, tiny_splits):
    result = train(tiny_cfg("train.steps_per_epoch=5", "train.batch_size=32"), tiny_splits)
    assert [m.images_seen for m in result.history] == [160, 320]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_trains(name, tiny_cfg, tiny_splits):
    lr = "0.05" if name == "sgd" else "0.003"
    result = train(tiny_cfg(f"train.optimizer={name}", f"train.lr={lr}"), tiny_splits)
    assert result.history[-1].train_loss < math.log(10)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_scheduler_sets_the_rate(name, tiny_cfg, tiny_splits):
    cfg = tiny_cfg(
        f"train.scheduler={name}",
        "train.epochs=3",
        "train.step_size=1",
        "train.lr=0.01",
        "train.plateau_patience=0",
        "train.gamma=0.5",
    )
    lrs = [m.lr for m in train(cfg, tiny_splits).history]
    expected = {
        "none": lambda: lrs == [0.01] * 3,
        "step": lambda: lrs == pytest.approx([0.01, 0.005, 0.0025]),  # rate used in each epoch
        "cosine": lambda: lrs[0] > lrs[1] > lrs[2] and lrs[2] < 1e-6,
        "onecycle": lambda: lrs[0] > lrs[2] and lrs[2] < 1e-4,
        "plateau": lambda: lrs == [0.01] * 3,  # validation loss improved every epoch
    }
    assert expected[name](), lrs


def test_early_stopping_stops_after_patience():
    stopper = EarlyStopping(patience=2)
    state = TrainState(model=None, epochs=10, steps_per_epoch=1, device=torch.device("cpu"))
    for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.91], start=1):
        stopper.on_epoch_end(state, EpochMetrics(epoch, 1.0, loss, 0.5, 0.1, 0, 0.0))
    assert state.stop_reason and "2 epochs" in state.stop_reason


def test_callback_can_stop_and_fit_reports_why(tiny_cfg, tiny_splits):
    class StopAtOne(Callback):
        def on_epoch_end(self, state, metrics):
            state.stop_reason = "enough"

    result = train(tiny_cfg("train.epochs=5"), tiny_splits, [StopAtOne()])
    assert result.epochs_run == 1 and result.stop_reason == "enough"


def test_restore_best_tests_the_best_validation_epoch(tiny_cfg, tiny_splits):
    class RuinEpochTwo(Callback):  # wreck the weights during epoch 2 so it validates worst
        def on_step_end(self, state):
            if state.epoch == 2:
                with torch.no_grad():
                    for p in state.model.parameters():
                        p.add_(torch.randn_like(p))

    best = train(tiny_cfg(), tiny_splits, [RuinEpochTwo()])
    assert best.best_epoch == 1 and best.tested_epoch == 1
    last = train(tiny_cfg("train.restore_best=false"), tiny_splits, [RuinEpochTwo()])
    assert last.best_epoch == 1 and last.tested_epoch == 2
    assert best.test_loss < last.test_loss


def test_nan_loss_fails_the_fit(tiny_cfg, tiny_splits):
    class Poisoned(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(784, 10)

        def forward(self, x):
            return self.w(x.flatten(1)) * float("nan")

    cfg = tiny_cfg()
    with pytest.raises(TrainingDiverged, match="nan"):
        fit(Poisoned(), tiny_splits, cfg.train)


def test_without_validation_split_selection_uses_train_loss(tiny_cfg, fmnist):
    from cnnlab.data import make_splits

    splits = make_splits(fmnist, val_fraction=0.0, train_limit=500, seed=1)
    splits.test_x, splits.test_y = splits.test_x[:500], splits.test_y[:500]
    result = train(tiny_cfg("data.val_fraction=0.0"), splits)
    assert math.isnan(result.history[0].val_loss)
    assert result.best_epoch in (1, 2) and not math.isnan(result.test_loss)


def test_plateau_decays_when_the_loss_stalls(tiny_cfg):
    from cnnlab.training._optim import create_optimizer, create_scheduler

    cfg = tiny_cfg("train.scheduler=plateau", "train.plateau_patience=1", "train.gamma=0.5")
    opt = create_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg.train)
    schedule = create_scheduler(opt, cfg.train, steps_per_epoch=10)
    lrs = []
    for loss in [1.0, 0.8, 0.8, 0.8, 0.8]:
        schedule.after_step()  # stepping per batch must not touch a per-epoch schedule
        schedule.after_epoch(loss)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 5e-4])
