import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from cnnlab.config import (
    MODEL_CONFIGS,
    CnnConfig,
    Config,
    ConfigError,
    MlpConfig,
    flatten,
    from_dict,
    load_config,
    parse_override,
    to_toml,
)

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_need_no_file():
    cfg = load_config()
    assert cfg == Config()
    assert isinstance(cfg.model, CnnConfig)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_parse_and_round_trip(path):
    cfg = load_config(path)
    assert from_dict(tomllib.loads(to_toml(cfg))) == cfg


def test_overrides_are_typed_and_win_over_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[train]\nlr = 0.5\noptimizer = "sgd"\n')
    cfg = load_config(
        path,
        ["train.lr=0.01", "train.optimizer=adamw", "model.padding=[1, 0, 2]", "model.num_layers=3"],
    )
    assert cfg.train.lr == 0.01
    assert cfg.train.optimizer == "adamw"
    assert cfg.model.padding == [1, 0, 2]
    assert load_config(None, ["train.epochs=4"]).train.epochs == 4


def test_integer_widens_to_float_but_not_the_reverse():
    assert load_config(None, ["train.lr=1"]).train.lr == 1.0
    with pytest.raises(ConfigError, match=r"train.epochs: expected an integer, got float 2.5"):
        load_config(None, ["train.epochs=2.5"])


def test_model_family_selects_its_keys():
    cfg = load_config(None, ["model.name=mlp", "model.units=[32]"])
    assert cfg.model == MlpConfig(units=[32])
    with pytest.raises(ConfigError, match="unknown key of model 'mlp'"):
        load_config(None, ["model.name=mlp", "model.filters=8"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lrr=0.1", "train.lrr: unknown key (did you mean train.lr?)"),
        ("model.filterz=8", "did you mean model.filters?"),
        ("trian.lr=0.1", "unknown section [trian] (did you mean train?)"),
        ("train.lr=abc", "train.lr: expected a number, got str 'abc'"),
        ("train.lr=0", "train.lr: expected > 0, got 0.0"),
        ("train.lr=-1e-3", "train.lr: expected > 0"),
        ("train.lr=nan", "train.lr: expected > 0, got nan"),
        ("train.lr=inf", "train.lr: expected a finite number"),
        ("train.epochs=0", "train.epochs: expected > 0, got 0"),
        ("train.batch_size=-8", "train.batch_size: expected > 0"),
        ("train.batch_size=true", "train.batch_size: expected an integer, got bool True"),
        ("model.dropout=1.0", r"model.dropout: expected in [0, 1), got 1.0"),
        ("model.conv_dropout=-0.1", "model.conv_dropout: expected in"),
        ("model.name=resnet", "model.name: unknown model 'resnet'"),
        ("train.optimizer=adm", "train.optimizer: expected one of sgd, adam, adamw, got 'adm'"),
        ("train.scheduler=linear", "train.scheduler: expected one of none, step"),
        ("model.padding=[1, -1]", "model.padding: expected integers >= 0"),
        ("model.hidden_units=[64, 0]", "model.hidden_units: expected widths > 0"),
        ("train.nesterov=true", None),  # valid: momentum defaults to 0.9
        ("trainlr=0.1", "expected section.key=value"),
        ("train.lr", "expected section.key=value"),
        ("train.lr=[1,", "is not a TOML value"),
    ],
)
def test_bad_values_give_one_clear_line(override, message):
    if message is None:
        load_config(None, [override])
        return
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        load_config(None, [override])
    assert "\n" not in str(info.value)


def test_nesterov_needs_momentum():
    with pytest.raises(ConfigError, match="train.nesterov: needs train.momentum > 0"):
        load_config(None, ["train.optimizer=sgd", "train.nesterov=true", "train.momentum=0"])


def test_malformed_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[train\nlr = 1\n")
    with pytest.raises(ConfigError, match=r"broken.toml: malformed TOML"):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.toml")


def test_flatten_names_every_field_once():
    flat = flatten(Config())
    sections = [("data", 0), ("model", 0), ("train", 0), ("tracking", 0)]
    for section, _ in sections:
        assert any(k.startswith(section + ".") for k in flat)
    fields = {f.name for f in dataclasses.fields(CnnConfig)}
    assert {k.split(".")[1] for k in flat if k.startswith("model.")} == fields


def test_parse_override_reads_toml_values_and_bare_words():
    assert parse_override("train.lr=3e-4") == (["train", "lr"], 3e-4)
    assert parse_override("train.optimizer=adamw") == (["train", "optimizer"], "adamw")
    assert parse_override('tracking.run_name="a b"') == (["tracking", "run_name"], "a b")
    assert parse_override("model.hidden_units=[8, 4]") == (["model", "hidden_units"], [8, 4])


def test_every_model_family_has_a_name_field():
    for name, cls in MODEL_CONFIGS.items():
        assert cls().name == name


def test_a_config_file_overlays_its_base(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "base.toml").write_text(
        '[model]\nname = "convnet"\nwidth = 0.5\n[train]\nlr = 0.5\nepochs = 3\n'
    )
    (tmp_path / "recipes" / "mid.toml").write_text('base = "../base.toml"\n[train]\nepochs = 9\n')
    (tmp_path / "top.toml").write_text('base = "recipes/mid.toml"\n[model]\nwidth = 1.5\n')
    cfg = load_config(tmp_path / "top.toml", ["train.lr=0.1"])
    assert (cfg.model.name, cfg.model.width) == ("convnet", 1.5)
    assert (cfg.train.epochs, cfg.train.lr) == (9, 0.1)  # the chain, then --set, wins


def test_a_base_that_leads_back_to_itself_is_refused(tmp_path):
    (tmp_path / "a.toml").write_text('base = "b.toml"\n')
    (tmp_path / "b.toml").write_text('base = "a.toml"\n')
    with pytest.raises(ConfigError, match="leads back to itself"):
        load_config(tmp_path / "a.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [("base = 3\n", "base: expected a config file path"), ('base = "gone.toml"\n', "gone.toml")],
)
def test_a_bad_base_is_one_clear_line(tmp_path, text, message):
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "c.toml")


def test_a_section_is_checked_where_it_is_made():
    from cnnlab.config import CnnConfig, ConvnetConfig, TrainConfig

    with pytest.raises(ConfigError, match=r"^model.filters: expected > 0, got -1$"):
        CnnConfig(filters=-1)
    with pytest.raises(ConfigError, match=r"^model.filters: expected > 0, got 'x'$"):
        CnnConfig(filters="x")  # a wrong type made in code, not parsed
    with pytest.raises(ConfigError, match=r"^model.channels: expected > 0, got \[8, 0\]$"):
        ConvnetConfig(channels=[8, 0])
    with pytest.raises(ConfigError, match="train.lr: expected a finite number"):
        dataclasses.replace(TrainConfig(), lr=float("inf"))
    with pytest.raises(ConfigError, match="train.nesterov: needs train.momentum > 0"):
        TrainConfig(optimizer="sgd", nesterov=True, momentum=0.0)
    assert CnnConfig(filters=8).filters == 8
