"""The public Python API, re-exported at the top level as `cnnlab.train`, `cnnlab.tune`, ...

The command line is a thin layer over these functions: it parses arguments, prints results
and maps exceptions to exit codes.
"""

from cnnlab.api._results import ReportResult, RunResult, StudyResult, TuneResult
from cnnlab.api._runs import load_config, load_model, load_run, summary, train
from cnnlab.api._search import tune
from cnnlab.api._study import advise, report, run_study
from cnnlab.data import load_dataset
from cnnlab.export import export_model, predict_files, register_run
from cnnlab.models import register_model

__all__ = [
    "ReportResult",
    "RunResult",
    "StudyResult",
    "TuneResult",
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
