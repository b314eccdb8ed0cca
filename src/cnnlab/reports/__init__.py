"""Reports written from what MLflow recorded: curves, tables, trials, confusion matrix.

write_report(uri, ["baseline"], Path("report"), confusion=lambda run: confusion_from_run(uri, run))
"""

from cnnlab.reports._collect import (
    SEEDS_TAG,
    STEP_HASH_TAG,
    ExperimentRecord,
    RunRecord,
    best_run,
    collect,
    differing_params,
)
from cnnlab.reports._confusion import confusion_from_run
from cnnlab.reports._document import Document, Figure, Section, Table, to_html, to_markdown
from cnnlab.reports._evidence import (
    DIRECTIONS,
    METRICS,
    SEED_TAG,
    VARIANT_TAG,
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
    "SEED_TAG",
    "SEEDS_TAG",
    "STEP_HASH_TAG",
    "VARIANT_TAG",
    "Band",
    "Difference",
    "compare",
    "group_variants",
    "judge",
    "selected_variant",
    "Document",
    "ExperimentRecord",
    "Figure",
    "RunRecord",
    "Section",
    "Table",
    "best_run",
    "collect",
    "confusion_from_run",
    "differing_params",
    "to_html",
    "to_markdown",
    "write_report",
]
