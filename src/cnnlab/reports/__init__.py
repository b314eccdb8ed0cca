"""Reports written from what MLflow recorded: curves, tables, trials, confusion matrix.

write_report(uri, ["baseline"], Path("report"), confusion=lambda run: confusion_from_run(uri, run))
"""

from cnnlab.reports._collect import ExperimentRecord, RunRecord, best_run, collect
from cnnlab.reports._confusion import confusion_from_run
from cnnlab.reports._evidence import (
    DIRECTIONS,
    METRICS,
    Band,
    Difference,
    compare,
    group_variants,
    judge,
    selected_variant,
)
from cnnlab.reports._report import PUBLISHED, write_report

__all__ = [
    "DIRECTIONS",
    "METRICS",
    "PUBLISHED",
    "Band",
    "Difference",
    "ExperimentRecord",
    "RunRecord",
    "best_run",
    "collect",
    "compare",
    "confusion_from_run",
    "group_variants",
    "judge",
    "selected_variant",
    "write_report",
]
