"""Weight averaging (train.ema): the arithmetic, and that fit validates and tests the average."""

import pytest
import torch

from cnnlab.config import ConfigError, load_config
from cnnlab.models import create_model
from cnnlab.training import Normalize, evaluate, fit, seed_everything
from cnnlab.training._ema import WeightAverage


def _bn_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))


def test_average_follows_the_ramped_decay():
    net = _bn_net()
    ema = WeightAverage(net, decay=0.9)
    start = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    ema.update()  # first update: decay (1+0)/(10+0) = 0.1, so 90% of the way to the model
    expected = 0.1 * start + 0.9 * torch.ones_like(start)
    assert torch.allclose(ema.model[0].weight, expected)
    for _ in range(200):
        ema.update()
    assert ema.current_decay() == 0.9  # the ramp has reached the setting
    assert torch.allclose(ema.model[0].weight, torch.ones_like(start), atol=1e-6)


def test_buffers_are_copied_not_averaged():
    net = _bn_net()
    ema = WeightAverage(net, decay=0.999)
    net.train()
    net(torch.randn(16, 3) * 5 + 3)  # moves the BatchNorm running statistics
    ema.update()
    assert torch.equal(ema.model[1].running_mean, net[1].running_mean)
    assert ema.model[1].num_batches_tracked == net[1].num_batches_tracked == 1


def test_the_average_is_a_separate_frozen_copy():
    net = _bn_net()
    ema = WeightAverage(net, decay=0.5)
    assert all(not p.requires_grad for p in ema.model.parameters())
    assert not ema.model.training
    with torch.no_grad():
        net[0].weight.add_(1.0)
    assert not torch.equal(ema.model[0].weight, net[0].weight)
    ema.copy_to(net)
    assert torch.equal(ema.model[0].weight, net[0].weight)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1])
def test_decay_outside_the_open_interval_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(_bn_net(), decay)


def test_fit_tests_the_averaged_weights(tiny_cfg, tiny_splits):
    overrides = ["model.batchnorm=true", "train.epochs=3", "train.lr=0.01"]
    cfg = tiny_cfg(*overrides, "train.ema=0.99")
    seed_everything(cfg.train.seed)
    model = create_model(cfg.model)
    result = fit(model, tiny_splits, cfg.train)
    norm = Normalize(tiny_splits.mean, tiny_splits.std)
    # The returned model carries the tested weights: evaluating it again gives the same figure.
    again = evaluate(model, tiny_splits.test_x, tiny_splits.test_y, norm, 1000)
    assert again[1] == pytest.approx(result.test_accuracy, abs=0.01)  # fp32 vs bf16 rounding
    assert result.test_accuracy > 0.5
    seed_everything(cfg.train.seed)
    plain_model = create_model(cfg.model)
    plain = fit(plain_model, tiny_splits, tiny_cfg(*overrides).train)
    # Same batches, same steps; only the evaluated weights differ.
    assert [m.train_loss for m in plain.history] == [m.train_loss for m in result.history]
    assert [m.val_loss for m in plain.history] != [m.val_loss for m in result.history]
    key = "features.0.0.weight"
    assert not torch.equal(plain_model.state_dict()[key], model.state_dict()[key])


@pytest.mark.parametrize("bad", ["train.ema=1.0", "train.ema=-0.5"])
def test_ema_key_is_checked(bad):
    with pytest.raises(ConfigError, match="train.ema"):
        load_config(None, [bad])
