"""What the public functions return: plain objects that show as tables in Jupyter
(`_repr_html_`) and as text in a terminal (`__str__`), with pandas DataFrames for the rest.

    run = cnnlab.train(cfg)
    run.history.plot(x="epoch", y=["train_loss", "val_loss"])   # pandas, no cnnlab code
    search = cnnlab.tune(cfg, trials=8)
    search.trials.sort_values("value").head()
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.config import Config


def _table_html(title: str, rows: list[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'>{html.escape(_short(v))}</td></tr>"
        for k, v in rows
    )
    return f"<b>{html.escape(title)}</b><table>{cells}</table>"


def _table_text(title: str, rows: list[tuple[str, Any]]) -> str:
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join([title, *(f"  {k:<{width}}  {_short(v)}" for k, v in rows)])


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


class _Displayed:
    """A title and (name, value) rows, drawn as HTML in a notebook and as text elsewhere."""

    def _title(self) -> str:
        raise NotImplementedError

    def _rows(self) -> list[tuple[str, Any]]:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        from cnnlab.tracking import shown  # a notebook's output is shared: no passwords

        return shown(_table_html(self._title(), self._rows()))

    def __str__(self) -> str:
        from cnnlab.tracking import shown

        return shown(_table_text(self._title(), self._rows()))


@dataclass(repr=False)
class RunResult(_Displayed):
    """One trained run: what MLflow recorded, the per-epoch history and the model itself."""

    run_id: str | None  # None when trained with track=False
    experiment: str
    tracking_uri: str | None
    config: Config
    metrics: dict[str, float]  # the end-of-run figures: test_accuracy, best_val_loss, ...
    history: Any  # pandas.DataFrame, one row per epoch
    model: Any  # torch.nn.Module with the tested weights, in eval mode
    artifact_uri: str | None  # where config.toml, architecture.txt, model/ ... were logged
    data_dir: str | None = None  # where the run's data was found, for predict's normalisation
    fit: Any = None  # cnnlab.training.FitResult of a run trained here; None for a loaded run
    # per-channel (mean, std) of the training split, which predict normalises with; None:
    # read from the run's logged MLflow model when first needed
    pixel_stats: tuple[tuple[float, ...], ...] | None = None
    _runtime: Any = field(default=None, init=False, compare=False)  # set by the first predict

    def predict(self, images, batch_size: int = 1000):
        """Class index of each image (uint8, N x H x W or N x C x H x W), computed as the run
        evaluated its test set: same normalisation (the training split's statistics),
        precision and layout."""
        import torch

        from cnnlab.training import Normalize, predict

        if images.dim() == 3:
            images = images.unsqueeze(1)
        device = next(self.model.parameters()).device
        normalize = Normalize(*self._stats())
        runtime = self._prepared(device, tuple(images.shape[1:]))
        out = predict(self.model, images.to(device), normalize, batch_size, runtime)
        return out.to(torch.long)

    def _stats(self) -> tuple[tuple[float, ...], ...]:
        """As trained here, else as the run's MLflow model logged them (the data may be gone);
        only a run that logged no MLflow model needs its data again."""
        if self.pixel_stats is None and self.run_id and self.tracking_uri:
            from cnnlab.export import logged_pixel_stats
            from cnnlab.tracking import Store

            self.pixel_stats = logged_pixel_stats(Store(self.tracking_uri), self.run_id)
        if self.pixel_stats is None:
            from cnnlab.data import load_splits

            splits = load_splits(self.config, self.data_dir)
            self.pixel_stats = (splits.mean, splits.std)
        return self.pixel_stats

    def _prepared(self, device, input_shape):
        """The run's precision and layout, with the model laid out for them once per result;
        the first block fused as the native kernel only where it measures faster for images of
        `input_shape` here."""
        if self._runtime is None:
            from cnnlab.training import Runtime

            self._runtime = Runtime.from_config(self.config.train, device, self.model)
            self._runtime.prepare(self.model, input_shape)
        return self._runtime

    def _title(self) -> str:
        return f"cnnlab run {self.run_id or '(not tracked)'}"

    def _rows(self) -> list[tuple[str, Any]]:
        keys = ("test_accuracy", "test_loss", "best_val_accuracy", "best_val_loss", "epochs_run")
        rows = [("experiment", self.experiment), ("model", self.config.model.name)]
        rows += [(k, self.metrics[k]) for k in keys if k in self.metrics]
        return rows + [("artifacts", self.artifact_uri)]

    def __repr__(self) -> str:
        accuracy = self.metrics.get("test_accuracy")
        return f"RunResult(run_id={self.run_id!r}, test_accuracy={accuracy})"


@dataclass(repr=False)
class TuneResult(_Displayed):
    """A search: every trial as a DataFrame row, the best trial's config and run."""

    parent_run_id: str
    search_id: str
    engine: str
    objective: str
    trials: Any  # pandas.DataFrame: number, state, value, epochs, seconds, run_id, params
    best_value: float | None
    best_params: dict[str, Any] | None
    best_run_id: str | None
    best_config: Config | None  # the best trial's whole config, ready for cnnlab.train
    tracking_uri: str
    raw: Any = field(default=None)  # cnnlab.search.SearchResult, for what the table leaves out
    registered: Any = None  # cnnlab.export.Registered when search.register named a model

    def _title(self) -> str:
        return f"cnnlab search {self.search_id} ({self.engine})"

    def _rows(self) -> list[tuple[str, Any]]:
        states = self.trials["state"].value_counts().to_dict() if len(self.trials) else {}
        return [
            ("trials", ", ".join(f"{n} {s}" for s, n in states.items()) or "none"),
            (f"best {self.objective}", self.best_value),
            ("best params", self.best_params),
            ("best run", self.best_run_id),
            ("parent run", self.parent_run_id),
        ]

    def _repr_html_(self) -> str:
        return super()._repr_html_() + self.trials.to_html(index=False, max_rows=50)

    def __repr__(self) -> str:
        return f"TuneResult(parent_run_id={self.parent_run_id!r}, best_value={self.best_value})"


@dataclass(repr=False)
class ReportResult(_Displayed):
    """The files a report was written to."""

    markdown: Path
    html: Path
    figures: list[Path]

    def _title(self) -> str:
        return "cnnlab report"

    def _rows(self) -> list[tuple[str, Any]]:
        return [("markdown", self.markdown), ("html", self.html), ("figures", len(self.figures))]

    def __repr__(self) -> str:
        return f"ReportResult(html={str(self.html)!r}, figures={len(self.figures)})"


@dataclass(repr=False)
class StudyResult(_Displayed):
    """A study folder's steps (what ran, what was skipped) and its report."""

    steps: list[Any]  # cnnlab.study.StepResult: step, experiment, skipped, runs
    tracking_uri: str
    report: ReportResult

    def _title(self) -> str:
        return f"cnnlab study ({len(self.steps)} steps)"

    def _rows(self) -> list[tuple[str, Any]]:
        rows = [
            (s.step, "skipped (complete)" if s.skipped else f"{s.runs} run(s)") for s in self.steps
        ]
        return rows + [("report", self.report.html), ("tracking", self.tracking_uri)]

    def __repr__(self) -> str:
        return f"StudyResult(steps={len(self.steps)}, report={str(self.report.html)!r})"
