"""A run's test confusion matrix, as the run logged it when it took its test metrics: reports
read what MLflow recorded (export.evaluated_confusion evaluates an older run's weights again),
and the report's section that shows the best model's."""

from __future__ import annotations

import tempfile
from pathlib import Path

from cnnlab.reports._collect import RunRecord, tested_epoch
from cnnlab.reports._document import Figure, Section, Table
from cnnlab.reports._plots import confusion_svg


def confusion_from_run(uri: str, run: RunRecord):
    """(counts [true][predicted], class names) of the run's weights on the test set, as the run
    logged them when it took its test metrics; None for a run that logged none."""
    import json

    from cnnlab.tracking import CONFUSION_ARTIFACT, Store

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = Store(uri).download_artifacts(run.run_id, CONFUSION_ARTIFACT, tmp)
        except FileNotFoundError:  # a run from before it was logged
            return None
        table = json.loads(Path(path).read_text(encoding="utf-8"))
    return table["matrix"], table["class_names"]


def best_model_section(best: RunRecord, matrix, class_names) -> Section:
    per_class = [
        [name, f"{sum(row):,}", f"{100 * row[i] / max(1, sum(row)):.2f}%"]
        for i, (name, row) in enumerate(zip(class_names, matrix))
    ]
    return Section("Best model").add(
        f"Run **{best.name}** of experiment `{best.experiment}` (`{best.run_id}`), chosen on "
        f"validation accuracy across the experiments; its tested weights ({tested_epoch(best)} "
        "epoch) evaluated on the test set.",
        Figure("best-confusion.svg", confusion_svg(matrix, class_names), "test confusion matrix"),
        Table(["class", "test images", "accuracy"], per_class),
    )
