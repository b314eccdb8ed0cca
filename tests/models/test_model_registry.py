"""The registries, create_model and check_architecture, through the public API only."""

import contextlib
import dataclasses
import random
import time
import typing

import pytest
import torch
from torch import nn

from cnnlab.config import (
    MODEL_CONFIGS,
    ActivationName,
    CnnConfig,
    ConfigError,
    ConvnetConfig,
    MlpConfig,
)
from cnnlab.models import (
    ACTIVATIONS,
    FAMILIES,
    ArchitectureError,
    check_architecture,
    create_model,
    make_activation,
)


def test_registries_match_config():
    assert set(FAMILIES) == set(MODEL_CONFIGS)
    assert all(MODEL_CONFIGS[name] is family.config for name, family in FAMILIES.items())
    assert set(ACTIVATIONS) == set(typing.get_args(ActivationName))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_by_name(name):
    assert isinstance(make_activation(name), nn.Module)


def test_unknown_activation_suggests_closest():
    with pytest.raises(ArchitectureError, match="did you mean gelu"):
        make_activation("gelue")


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_builds_and_classifies(name):
    model = create_model(MODEL_CONFIGS[name]())
    assert model.training
    out = model(torch.randn(4, 1, 28, 28))
    assert out.shape == (4, 10)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_other_input_shape_and_classes(name):
    model = create_model(MODEL_CONFIGS[name](), input_shape=(3, 32, 32), num_classes=7)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_channels_last_input_gives_the_same_output(name):
    torch.manual_seed(0)
    model = create_model(MODEL_CONFIGS[name]()).eval()
    x = torch.randn(3, 1, 28, 28)
    expected = model(x)
    model = model.to(memory_format=torch.channels_last)
    out = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, expected)


def test_architecture_error_is_a_config_error():
    assert issubclass(ArchitectureError, ConfigError)


def test_config_of_the_wrong_family():
    cfg = MlpConfig()
    object.__setattr__(cfg, "name", "cnn")
    with pytest.raises(ArchitectureError, match="built from a CnnConfig"):
        create_model(cfg)


@pytest.mark.parametrize(
    ("shape", "classes"), [((28, 28), 10), ((1, 0, 28), 10), ((1, 28.0, 28), 10), ((1, 28, 28), 0)]
)
def test_bad_input_shape_or_classes(shape, classes):
    with pytest.raises(ArchitectureError):
        check_architecture(MlpConfig(), shape, classes)


def test_accepts_torch_size_as_input_shape():
    model = create_model(CnnConfig(), input_shape=torch.zeros(1, 1, 28, 28).shape[1:])
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_check_architecture_mlp_accepts():
    check_architecture(MlpConfig(units=[]))


def test_check_architecture_is_fast():
    rng = random.Random(0)
    configs = [
        CnnConfig(
            kernel_size=rng.randint(1, 7),
            num_layers=rng.randint(1, 6),
            padding=rng.randint(0, 2),
            pool_size=rng.randint(1, 3),
        )
        for _ in range(1000)
    ]
    start = time.perf_counter()
    for cfg in configs:
        with contextlib.suppress(ArchitectureError):
            check_architecture(cfg)
    assert time.perf_counter() - start < 0.5  # typically ~10 ms; the margin absorbs a busy machine


# ---------------------------------------------------------------- every field reaches the model

# A valid non-default value for every field but `name`; a new field fails until it is listed.
_CHANGES = {
    CnnConfig: {
        "filters": 16,
        "kernel_size": 5,
        "num_layers": 3,
        "padding": 1,
        "pool_size": 3,
        "batchnorm": True,
        "conv_dropout": 0.2,
        "activation": "gelu",
        "head_pool": "avg",
        "hidden_units": [32],
        "dropout": 0.3,
    },
    MlpConfig: {"units": [64], "dropout": 0.3, "activation": "tanh"},
    ConvnetConfig: {
        "channels": [16, 32],
        "width": 0.5,
        "convs_per_stage": 2,
        "activation": "relu",
        "head_pool": "avg",
        "dropout": 0.3,
    },
}
_FIELDS = [(cls, key, value) for cls, changes in _CHANGES.items() for key, value in changes.items()]


@pytest.mark.parametrize("cls", list(MODEL_CONFIGS.values()))
def test_every_field_has_a_change_listed(cls):
    fields = {f.name for f in dataclasses.fields(cls)} - {"name"}
    assert set(_CHANGES[cls]) == fields


def _fingerprint(cfg):
    torch.manual_seed(0)
    model = create_model(cfg).eval()
    with torch.no_grad():
        out = model(torch.linspace(-1, 1, 28 * 28).reshape(1, 1, 28, 28))
    return repr(model), sum(p.numel() for p in model.parameters()), out


@pytest.mark.parametrize(("cls", "key", "value"), _FIELDS, ids=lambda v: str(v))
def test_every_field_changes_the_model(cls, key, value):
    default = cls()
    assert getattr(default, key) != value
    changed = dataclasses.replace(default, **{key: value})
    (repr_a, params_a, out_a), (repr_b, params_b, out_b) = map(_fingerprint, [default, changed])
    assert repr_a != repr_b or params_a != params_b or not torch.equal(out_a, out_b)
