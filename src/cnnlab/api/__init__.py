"""The public Python API, re-exported at the top level as `cnnlab.train`, `cnnlab.tune`, ...

The command line is a thin layer over these functions: it parses arguments, prints results
and maps exceptions to exit codes.
"""

from cnnlab.api._api import (
    load_config,
    load_model,
    load_run,
    report,
    run_study,
    summary,
    train,
    tune,
)
from cnnlab.api._results import ReportResult, RunResult, StudyResult, TuneResult
from cnnlab.models import register_model

__all__ = [
    "ReportResult",
    "RunResult",
    "StudyResult",
    "TuneResult",
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
