"""The convnet family: stages, the width multiplier, maps too small to pool."""

import pytest
import torch

from cnnlab.config import ConfigError, ConvnetConfig, load_config
from cnnlab.models import ArchitectureError, create_model, summarize


def test_stages_and_width_multiplier():
    model = create_model(ConvnetConfig(channels=[32, 64], width=0.5, convs_per_stage=2))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (1, 16),
        (16, 16),
        (16, 32),
        (32, 32),
    ]
    assert all(c.bias is None for c in convs)  # BatchNorm's shift replaces the bias
    assert summarize(model).spatial_chain == [28, 28, 28, 14, 14, 14, 7]


def test_deep_stack_stops_pooling_at_one_pixel():
    model = create_model(ConvnetConfig(channels=[8] * 6, convs_per_stage=1))
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_no_stage_is_an_architecture_error():
    with pytest.raises(ArchitectureError, match="at least one stage"):
        create_model(ConvnetConfig(channels=[]))


@pytest.mark.parametrize(
    "bad", ["model.width=0", "model.convs_per_stage=0", "model.channels=[8, 0]"]
)
def test_bad_values_are_config_errors(bad):
    with pytest.raises(ConfigError):
        load_config(None, ["model.name=convnet", bad])


def _names(stage):
    return [type(m).__name__ for m in stage]


def test_pool_goes_before_a_monotonic_activation_only():
    relu = create_model(ConvnetConfig(channels=[8, 8], convs_per_stage=2, activation="relu"))
    # Only the stage's last activation can trade places with the pool.
    expected = ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "MaxPool2d", "ReLU"]
    assert [_names(s) for s in relu.features] == [expected] * 2
    gelu = create_model(ConvnetConfig(channels=[8], convs_per_stage=1, activation="gelu"))
    assert _names(gelu.features[0]) == ["Conv2d", "BatchNorm2d", "GELU", "MaxPool2d"]


def test_pool_first_stage_computes_the_textbook_stage():
    torch.manual_seed(0)
    model = create_model(ConvnetConfig(channels=[8, 16], activation="relu")).train()
    textbook = [
        torch.nn.Sequential(*[m for m in s if not isinstance(m, torch.nn.MaxPool2d)], s[-2])
        for s in model.features
    ]
    x = torch.randn(4, 1, 28, 28)
    assert torch.allclose(model.features(x), torch.nn.Sequential(*textbook)(x), atol=1e-6)
