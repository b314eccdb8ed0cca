"""The cnn family: the course CNN exactly, the study's 6x6 variant, block options."""

import pytest
import torch
from torch import nn

from cnnlab.config import CnnConfig
from cnnlab.models import create_model, summarize

COURSE = CnnConfig(
    filters=32, kernel_size=3, num_layers=3, padding=[1, 0], pool_size=2, head_pool="avg"
)


def _types(module):
    return [type(m).__name__ for m in module]


def test_course_cnn_layers():
    model = create_model(COURSE)
    # The pool runs before the ReLU: the same function, with a quarter of the ReLU's work.
    assert [_types(block) for block in model.features] == [["Conv2d", "MaxPool2d", "ReLU"]] * 3
    convs = [block[0] for block in model.features]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 32), (32, 32), (32, 32)]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 3
    assert [c.padding for c in convs] == [(1, 1), (0, 0), (0, 0)]
    assert [b[1].kernel_size for b in model.features] == [2, 2, 2]
    assert _types(model.head) == [
        "AdaptiveAvgPool2d", "Flatten", "Linear", "ReLU", "Linear", "ReLU", "Linear"
    ]  # fmt: skip
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 128), (128, 64), (64, 10)]


def _activation_first(block: nn.Sequential) -> nn.Sequential:
    """The textbook order (conv, [BN], activation, [dropout], pool) of a pool-first block."""
    pool = [m for m in block if isinstance(m, nn.MaxPool2d)]
    rest = [m for m in block if not isinstance(m, nn.MaxPool2d)]
    return nn.Sequential(*rest, *pool)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh"])
def test_pooling_before_a_monotonic_activation_changes_nothing(activation):
    torch.manual_seed(0)
    cfg = CnnConfig(num_layers=2, padding=[1, 0], batchnorm=True, activation=activation)
    model = create_model(cfg).train()
    textbook = ConvNetLike([_activation_first(b) for b in model.features], model.head)
    x = torch.randn(8, 1, 28, 28)
    out_a, out_b = model(x), textbook(x)
    assert torch.allclose(out_a, out_b, atol=1e-6)
    grads_a = torch.autograd.grad(out_a.square().sum(), list(model.parameters()))
    grads_b = torch.autograd.grad(out_b.square().sum(), list(model.parameters()))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads_a, grads_b, strict=True))


def test_a_non_monotonic_activation_keeps_the_textbook_order():
    model = create_model(CnnConfig(num_layers=2, activation="gelu"))
    assert [_types(block) for block in model.features] == [["Conv2d", "GELU", "MaxPool2d"]] * 2


class ConvNetLike(nn.Module):
    """The same layers (shared, not copied) in other blocks."""

    def __init__(self, blocks, head):
        super().__init__()
        self.blocks, self.head = nn.Sequential(*blocks), head

    def forward(self, x):
        return self.head(self.blocks(x))


def test_course_cnn_chain_and_params():
    summary = summarize(create_model(COURSE))
    assert summary.spatial_chain == [28, 28, 14, 12, 6, 4, 2]
    assert summary.final_map == (32, 2, 2)
    conv1 = 1 * 32 * 3 * 3 + 32
    conv23 = 32 * 32 * 3 * 3 + 32
    dense = (32 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10)
    assert conv1 + 2 * conv23 + dense == 31_946
    assert summary.total_params == summary.trainable_params == 31_946


@pytest.mark.parametrize("filters", [8, 32])
def test_six_by_six_variant_flattens_into_the_head(filters):
    cfg = CnnConfig(filters=filters, num_layers=2, padding=[1, 0], head_pool="flatten")
    model = create_model(cfg)
    assert summarize(model).final_map == (filters, 6, 6)
    assert model.head[1].in_features == filters * 36
    assert model.head[1].out_features == 128


def test_padding_list_last_value_repeats():
    model = create_model(CnnConfig(num_layers=4, padding=[2, 1], pool_size=1))
    assert [b[0].padding for b in model.features] == [(2, 2), (1, 1), (1, 1), (1, 1)]


def test_int_padding_applies_to_every_block():
    model = create_model(CnnConfig(num_layers=3, padding=1))
    assert [b[0].padding for b in model.features] == [(1, 1)] * 3


def test_full_block_order_and_bias_under_batchnorm():
    cfg = CnnConfig(batchnorm=True, conv_dropout=0.1, activation="silu", dropout=0.2)
    model = create_model(cfg)
    block = model.features[0]
    assert _types(block) == ["Conv2d", "BatchNorm2d", "SiLU", "Dropout2d", "MaxPool2d"]
    assert block[0].bias is None
    assert block[3].p == 0.1
    assert _types(model.head)[:4] == ["Flatten", "Linear", "SiLU", "Dropout"]
    assert model.head[3].p == 0.2


def test_no_pool_and_no_dropout_layers_when_off():
    model = create_model(CnnConfig(pool_size=1, conv_dropout=0.0, dropout=0.0))
    assert all(_types(b) == ["Conv2d", "ReLU"] for b in model.features)
    assert "Dropout" not in _types(model.head)
    assert model.features[0][0].bias is not None


def test_max_head_pool_and_no_hidden_layers():
    model = create_model(CnnConfig(filters=8, head_pool="max", hidden_units=[]))
    assert _types(model.head) == ["AdaptiveMaxPool2d", "Flatten", "Linear"]
    assert model.head[2].in_features == 8


def test_batchnorm_model_trains_on_batch_of_one_tiny_map():
    # BatchNorm in train mode refuses one value per channel; building must not hit that.
    # 28 -> 26 -> 13 -> 11 -> 5 -> 3 -> 1: the dry run sees one value per channel.
    model = create_model(CnnConfig(num_layers=3, padding=0, batchnorm=True))
    assert model.training
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
