"""Reports written from what MLflow recorded: curves, tables, trials, confusion matrix, and the
study's evidence (differences by seed, p-values, Holm, seeds needed, hypotheses judged whole).

write_report(uri, ["baseline"], Path("report"), confusion=lambda run: confusion_from_run(uri, run))
"""

from cnnlab.reports._collect import (
    SELECTIONS,
    ExperimentRecord,
    RunRecord,
    best_run,
    collect,
    selection,
    tested_epoch,
)
from cnnlab.reports._confusion import confusion_from_run
from cnnlab.reports._document import Section, Table
from cnnlab.reports._evidence import (
    DIRECTIONS,
    METRICS,
    SENSES,
    Band,
    Difference,
    compare,
    group_variants,
    holm,
    judge,
    metric_sense,
    p_value,
    seeds_needed,
    selected_variant,
)
from cnnlab.reports._hypotheses import Arm, Judged, Part, hypotheses_table, judge_hypotheses
from cnnlab.reports._report import PUBLISHED, judge_experiments, write_report

__all__ = [
    "DIRECTIONS",
    "METRICS",
    "PUBLISHED",
    "SELECTIONS",
    "SENSES",
    "Arm",
    "Band",
    "Difference",
    "ExperimentRecord",
    "Judged",
    "Part",
    "RunRecord",
    "Section",
    "Table",
    "best_run",
    "collect",
    "compare",
    "confusion_from_run",
    "group_variants",
    "holm",
    "hypotheses_table",
    "judge",
    "judge_experiments",
    "judge_hypotheses",
    "metric_sense",
    "p_value",
    "seeds_needed",
    "selected_variant",
    "selection",
    "tested_epoch",
    "write_report",
]
