"""cnnlab: design, train, tune and track convolutional networks on image classification.

    import cnnlab
    cfg = cnnlab.load_config("configs/default.toml", {"train.epochs": 2})
    cnnlab.summary(cfg)
    run = cnnlab.train(cfg)
    run.history.plot(x="epoch", y=["train_loss", "val_loss"])

The functions (load_config, summary, train, tune, run_study, report, advise, load_run,
load_model, register_model, load_dataset, export_model, predict_files, register_run) live in
cnnlab.api;
they and the subpackages (cnnlab.data, cnnlab.export, cnnlab.tracking, ...) are imported on
first use, so `import cnnlab` (and the CLI) stays quick.
"""

from typing import Any

from cnnlab._version import __version__

# Errors the functions raise, each with the one line the CLI prints: bad input, data that is
# missing or fails verification, a tracking server that is not there.
_ERRORS = {
    "ConfigError": "cnnlab.config",
    "DataError": "cnnlab.data",
    "TrackingUnavailable": "cnnlab.tracking",
    "TrackingDenied": "cnnlab.tracking",
}
_SUBPACKAGES = (
    "advisor",
    "api",
    "data",
    "export",
    "models",
    "reports",
    "runs",
    "search",
    "study",
    "tracking",
    "training",
)
__all__ = [
    "ConfigError",
    "DataError",
    "TrackingDenied",
    "TrackingUnavailable",
    "ReportResult",
    "RunResult",
    "StudyResult",
    "TuneResult",
    "__version__",
    "advise",
    "export_model",
    "load_config",
    "load_dataset",
    "load_model",
    "load_run",
    "predict_files",
    "register_model",
    "register_run",
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
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"cnnlab.{name}")
    if name in __all__:
        import cnnlab.api

        return getattr(cnnlab.api, name)
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
