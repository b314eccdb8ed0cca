"""A model family of the user's own, registered from Python and used like a built-in one."""

from dataclasses import dataclass, field

import pytest
from torch import nn

import cnnlab
from cnnlab.config import MODEL_CONFIGS
from cnnlab.models import FAMILIES, ArchitectureError


@dataclass
class TinyConfig:
    name: str = "tiny"
    widths: list[int] = field(default_factory=lambda: [8])  # conv channels, one 3x3 conv each
    pool: bool = True  # a 2x2 max-pool after each conv


def build_tiny(cfg: TinyConfig, input_shape, num_classes: int) -> nn.Module:
    layers, channels = [], input_shape[0]
    for width in cfg.widths:
        layers += [nn.Conv2d(channels, width, 3), nn.ReLU()]
        layers += [nn.MaxPool2d(2)] if cfg.pool else []
        channels = width
    features = nn.Sequential(*layers)
    model = nn.Sequential()
    model.features = features
    model.head = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))
    return model


@pytest.fixture
def tiny_family():
    cnnlab.register_model("tiny", TinyConfig, build_tiny)
    yield
    MODEL_CONFIGS.pop("tiny", None)
    FAMILIES.pop("tiny", None)


TINY_RUN = {"data": {"train_limit": 1000, "val_fraction": 0.05}, "train": {"epochs": 1}}


@pytest.mark.slow
def test_registered_family_is_summarised_trained_and_searched(tiny_family, tmp_path, fmnist):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = cnnlab.load_config({**TINY_RUN, "model": {"name": "tiny", "widths": [8, 8]}})
    table = cnnlab.summary(cfg)
    assert table.final_map == (8, 5, 5) and table.spatial_chain == [28, 26, 13, 11, 5]
    run = cnnlab.train(cfg, tracking_uri=uri, progress=False)
    assert run.metrics["test_accuracy"] > 0.3
    import mlflow

    params = mlflow.MlflowClient(uri).get_run(run.run_id).data.params
    assert params["model.name"] == "tiny" and params["model.widths"] == "[8, 8]"
    assert params["arch.final_map"] == "8x5x5"  # the built network is logged as for built-ins
    space = {
        "model.widths": {"dist": "choice", "options": [[4], [8, 8], [4, 4, 4, 4]]},
        "model.name": {"dist": "choice", "options": ["tiny", "cnn"]},
    }
    search = cnnlab.tune(
        cnnlab.load_config(cfg, {"search.space": space, "search.seed": 3}),
        engine="optuna",
        trials=6,
        tracking_uri=uri,
        progress=False,
    )
    trials = search.trials
    assert len(trials) == 6
    # Four 3x3 convs with pools shrink 28 below 1: refused before training, not a crash;
    # and the cnn family has no `widths`: that trial fails as an invalid config.
    refused = trials[trials["reason"] == "invalid_architecture"]
    assert all(w == [4, 4, 4, 4] for w in refused["model.widths"])
    assert (trials["state"] == "ok").any()


def test_registered_family_is_parsed_strictly(tiny_family):
    with pytest.raises(cnnlab.ConfigError, match="model.widthz: unknown key of model 'tiny'"):
        cnnlab.load_config({"model": {"name": "tiny", "widthz": [4]}})
    with pytest.raises(cnnlab.ConfigError, match=r"model.widths\[0\]: expected an integer"):
        cnnlab.load_config({"model": {"name": "tiny", "widths": ["x"]}})


def test_impossible_or_wrong_networks_are_refused_before_data(tiny_family):
    deep = cnnlab.load_config({"model": {"name": "tiny", "widths": [4, 4, 4, 4]}})
    with pytest.raises(ArchitectureError, match="family 'tiny' fails on a 1x28x28 input"):
        cnnlab.summary(deep)

    def wrong_outputs(cfg, input_shape, num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 3))

    cnnlab.register_model("tiny", TinyConfig, wrong_outputs)  # a cell run again replaces it
    with pytest.raises(ArchitectureError, match=r"outputs of shape \[3\] per image, expected"):
        cnnlab.summary({"model": {"name": "tiny"}})


def test_registration_is_checked():
    with pytest.raises(cnnlab.ConfigError, match="'cnn' is a built-in model family"):
        cnnlab.register_model("cnn", TinyConfig, build_tiny)
    with pytest.raises(cnnlab.ConfigError, match="needs a field name = 'other'"):
        cnnlab.register_model("other", TinyConfig, build_tiny)

    @dataclass
    class NoDefault:
        width: int
        name: str = "nodefault"

    with pytest.raises(cnnlab.ConfigError, match="every field of NoDefault needs a default"):
        cnnlab.register_model("nodefault", NoDefault, build_tiny)
    assert "other" not in FAMILIES and "nodefault" not in FAMILIES
