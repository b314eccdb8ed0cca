"""Typed configuration: the one home of every default, and the only code that parses TOML.

    cfg = load_config("configs/default.toml", ["train.epochs=2", "model.filters=32"])
    cfg.train.lr, cfg.model.filters, flatten(cfg)["model.filters"]

Parsing is strict: an unknown key names the closest valid one, a value of the wrong type or out
of range says what was expected. Every problem raises ConfigError with one line of text.

The lowest layer of cnnlab: it imports only the standard library, and owns the vocabulary other
packages check against (cnnlab.data's dataset names). _base holds the error, the range checks
and that vocabulary; _models the [model] families; _schema the other sections and Config;
_parse reading; _toml writing.
"""

from cnnlab.config._base import (
    BUILT_IN_DATASETS,
    DATASET_NAMES,
    FOLDER,
    ActivationName,
    ConfigError,
    DeviceName,
    OptimizerName,
    PrecisionName,
    SchedulerName,
    check_values,
)
from cnnlab.config._models import MODEL_CONFIGS, CnnConfig, ConvnetConfig, MlpConfig, ModelConfig
from cnnlab.config._parse import (
    apply_override,
    from_dict,
    load_config,
    merge_sections,
    override_text,
    parse_override,
    read_config_file,
    read_toml,
)
from cnnlab.config._schema import (
    SECTIONS,
    Config,
    DataConfig,
    SearchConfig,
    TrackingConfig,
    TrainConfig,
)
from cnnlab.config._toml import flatten, to_dict, to_toml, toml_value

__all__ = [
    "BUILT_IN_DATASETS",
    "DATASET_NAMES",
    "FOLDER",
    "MODEL_CONFIGS",
    "SECTIONS",
    "ActivationName",
    "CnnConfig",
    "Config",
    "ConfigError",
    "ConvnetConfig",
    "DataConfig",
    "DeviceName",
    "MlpConfig",
    "ModelConfig",
    "OptimizerName",
    "PrecisionName",
    "SchedulerName",
    "SearchConfig",
    "TrackingConfig",
    "TrainConfig",
    "apply_override",
    "check_values",
    "flatten",
    "from_dict",
    "load_config",
    "merge_sections",
    "override_text",
    "parse_override",
    "read_config_file",
    "read_toml",
    "to_dict",
    "to_toml",
    "toml_value",
]
