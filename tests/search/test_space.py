"""The space as plain data: parsing, one-line errors, sampling, and both engines' views."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.config import ConfigError, load_config, to_dict
from cnnlab.search import parse_space, trial_config
from cnnlab.search._hyperopt import hyperopt_space
from cnnlab.search._optuna import optuna_distributions
from cnnlab.search._space import overrides, sample, space_to_dict

STUDY = {
    "model.filters": {"dist": "quniform", "low": 16, "high": 128, "q": 8, "int": True},
    "model.kernel_size": {"dist": "quniform", "low": 2, "high": 5, "q": 1, "int": True},
    "model.num_layers": {"dist": "quniform", "low": 1, "high": 10, "q": 1, "int": True},
}
BASE = to_dict(load_config(None))


def test_the_study_space_parses_and_samples_integers_on_its_grid():
    space = parse_space(STUDY, BASE)
    rng = np.random.default_rng(0)
    points = [sample(space, rng) for _ in range(300)]
    filters = {p["model.filters"] for p in points}
    assert all(isinstance(v, int) for p in points for v in p.values())
    assert filters <= set(range(16, 129, 8)) and {16, 128} <= filters
    assert {p["model.kernel_size"] for p in points} == {2, 3, 4, 5}
    assert {p["model.num_layers"] for p in points} == set(range(1, 11))
    assert space_to_dict(space) == {
        k: {**v, "low": float(v["low"]), "high": float(v["high"]), "q": float(v["q"])}
        for k, v in STUDY.items()
    }


def test_unquoted_dotted_keys_mean_the_same():
    nested = {"model": {"filters": STUDY["model.filters"]}}
    assert parse_space(nested, BASE) == parse_space({"model.filters": STUDY["model.filters"]}, BASE)


def test_every_distribution_reaches_the_config_through_set():
    space = parse_space(
        {
            "train.lr": {"dist": "loguniform", "low": 1e-4, "high": 1e-1},
            "train.weight_decay": {"dist": "qloguniform", "low": 1e-5, "high": 1e-2, "q": 1e-5},
            "model.dropout": {"dist": "uniform", "low": 0.0, "high": 0.5},
            "model.num_layers": {"dist": "intrange", "low": 1, "high": 3},
            "model.hidden_units": {"dist": "choice", "options": [[128, 64], [256]]},
            "train.optimizer": {"dist": "choice", "options": ["adam", "adamw"]},
        },
        BASE,
    )
    rng = np.random.default_rng(1)
    for _ in range(50):
        params = sample(space, rng)
        cfg = trial_config(load_config(None), params)
        assert 1e-4 <= cfg.train.lr <= 1e-1 and 1 <= cfg.model.num_layers <= 3
        assert cfg.model.hidden_units in ([128, 64], [256])
        assert cfg.train.optimizer == params["train.optimizer"]
        # the --set items rebuild the same config from the command line
        assert load_config(None, overrides(params)) == trial_config(load_config(None), params)
    assert set(hyperopt_space(space)) == set(optuna_distributions(space)) == {d.key for d in space}


BAD = [
    ({"model.filters": {"dist": "normal", "low": 1, "high": 2}}, "unknown distribution 'normal'"),
    ({"model.filters": {"dist": "quniform", "low": 64, "high": 16, "q": 8}}, "expected low < high"),
    ({"model.filters": {"dist": "quniform", "low": 16, "high": 64, "q": 0}}, "q: expected > 0"),
    ({"train.lr": {"dist": "loguniform", "low": 0, "high": 1}}, "loguniform needs low > 0"),
    ({"model.activation": {"dist": "choice", "options": []}}, "choice needs at least one option"),
    ({"model.filtres": {"dist": "uniform", "low": 1, "high": 2}}, "did you mean model.filters?"),
    ({"modle.filters": {"dist": "uniform", "low": 1, "high": 2}}, "unknown section [modle]"),
    ({"model.filters": {"dist": "uniform", "low": 1, "high": 2}}, "expected an integer"),
    ({"model.dropout": {"dist": "uniform", "low": 0, "high": 1.5}}, "model.dropout: expected in"),
    ({"model.filters": {"dist": "quniform", "low": 1, "high": 2}}, "quniform needs q"),
    ({"model.filters": {"dist": "uniform", "low": 1, "hihg": 2}}, "got 'hihg'"),
    ({"search.trials": {"dist": "intrange", "low": 1, "high": 2}}, "cannot be searched"),
    ({"model.filters": 3}, "expected a table"),
    ({}, "search.space: empty"),
]


@pytest.mark.parametrize("table, message", BAD, ids=[m for _, m in BAD])
def test_bad_spaces_are_one_line_config_errors(table, message):
    with pytest.raises(ConfigError) as info:
        parse_space(table, BASE)
    text = str(info.value)
    assert message in text and "\n" not in text, text
    if table:
        assert text.startswith("search.space.")


def test_train_ignores_the_search_section():
    from pathlib import Path

    from cnnlab.config import flatten, to_toml

    path = Path(__file__).resolve().parents[2] / "configs" / "study-search.toml"
    cfg = load_config(path)
    assert cfg.search.space and not [k for k in flatten(cfg) if k.startswith("search.")]
    assert load_config(None, []).search.space == {}
    # the resolved config, space included, is TOML that reads back equal
    import tomllib

    from cnnlab.config import from_dict

    assert from_dict(tomllib.loads(to_toml(cfg))) == cfg


FAMILIES = {"model.name": {"dist": "choice", "options": ["cnn", "convnet", "mlp"]}}


def test_a_search_over_model_families_builds_each_family_from_its_defaults():
    from cnnlab.config import ConvnetConfig, MlpConfig
    from cnnlab.search import check_space

    base = load_config(None, ["model.activation=tanh", "model.filters=32", "model.dropout=0.2"])
    space = parse_space(FAMILIES, to_dict(base))
    convnet = trial_config(base, {"model.name": "convnet"}).model
    # settings made on the cnn that the family also has come along; filters does not exist there
    assert convnet == ConvnetConfig(activation="tanh", dropout=0.2)
    assert trial_config(base, {"model.name": "mlp"}).model == MlpConfig(
        activation="tanh", dropout=0.2
    )
    assert trial_config(base, {"model.name": "cnn"}).model == base.model
    report = check_space(base, space, samples=30)
    assert report.invalid == 0 and report.inert_keys == []


def test_a_key_the_sampled_family_lacks_makes_an_invalid_trial_with_its_name():
    space = {**FAMILIES, "model.filters": {"dist": "intrange", "low": 8, "high": 16}}
    parse_space(space, BASE)  # each key is valid for some family
    with pytest.raises(ConfigError, match=r"model.filters: unknown key of model 'convnet'"):
        trial_config(load_config(None), {"model.name": "convnet", "model.filters": 8})
    with pytest.raises(ConfigError, match=r"model.name: unknown model 'resnet'"):
        trial_config(load_config(None), {"model.name": "resnet"})
