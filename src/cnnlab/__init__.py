"""cnnlab: design, train, tune and track convolutional networks on image classification.

    import cnnlab
    cfg = cnnlab.load_config("configs/default.toml", {"train.epochs": 2})
    cnnlab.summary(cfg)
    run = cnnlab.train(cfg)
    run.history.plot(x="epoch", y=["train_loss", "val_loss"])

The functions (load_config, summary, train, tune, run_study, report, load_run, load_model,
register_model) live in cnnlab.api; they are imported on first use, so `import cnnlab` (and
the CLI) stays quick.
"""

from typing import Any

__version__ = "0.1.0"
# Errors the functions raise, each with the one line the CLI prints: bad input, data that is
# missing or fails verification, a tracking server that is not there.
_ERRORS = {
    "ConfigError": "cnnlab.config",
    "DataError": "cnnlab.data",
    "TrackingUnavailable": "cnnlab.tracking",
}
__all__ = [
    "ConfigError",
    "DataError",
    "TrackingUnavailable",
    "ReportResult",
    "RunResult",
    "StudyResult",
    "TuneResult",
    "__version__",
    "load_config",
    "load_model",
    "load_run",
    "register_model",
    "report",
    "run_study",
    "summary",
    "train",
    "tune",
]


def __getattr__(name: str) -> Any:
    if name in _ERRORS:
        import importlib

        return getattr(importlib.import_module(_ERRORS[name]), name)
    if name in __all__:
        import cnnlab.api

        return getattr(cnnlab.api, name)
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
