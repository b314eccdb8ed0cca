"""Report figures as SVG text: curves per run, search trials, confusion matrix."""

from __future__ import annotations

import io

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cnnlab.reports._collect import RunRecord

_TITLES = {
    "train_loss": ("training loss", "cross-entropy loss"),
    "val_loss": ("validation loss", "cross-entropy loss"),
    "val_accuracy": ("validation accuracy", "accuracy"),
}


def curves_svg(runs: list[RunRecord], key: str, labels: dict[str, str]) -> str:
    """One line per run of the per-epoch metric `key`; the legend says what differs."""
    title, ylabel = _TITLES[key]
    fig = Figure(figsize=(7.5, 4), layout="constrained")
    ax = fig.subplots()
    for run in runs:
        points = run.history.get(key, [])
        if points:
            ax.plot(*zip(*points), marker="o", markersize=3, label=labels[run.run_id])
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if runs:
        ax.legend(fontsize="small")
    return _svg(fig)


def trials_svg(trials: list[RunRecord], params: list[str], objective: str) -> str:
    """Each sampled parameter against the objective, one panel per parameter."""
    params = params or ["trial"]
    fig = Figure(figsize=(3.2 * len(params), 3.2), layout="constrained")
    axes = fig.subplots(1, len(params), squeeze=False)[0]
    for ax, param in zip(axes, params):
        xs, ys = [], []
        for i, run in enumerate(trials):
            if objective in run.metrics:
                xs.append(_number(run.params.get(param, i)) if param != "trial" else i + 1)
                ys.append(run.metrics[objective])
        ax.scatter(xs, ys)
        ax.set(xlabel=param, ylabel=objective)
        ax.grid(alpha=0.3)
    fig.suptitle("search trials")
    return _svg(fig)


def confusion_svg(matrix: list[list[int]], class_names: list[str]) -> str:
    """Counts of (true class, predicted class) on the test set, row-normalised colours."""
    fig = Figure(figsize=(6.5, 5.5), layout="constrained")
    ax = fig.subplots()
    rows = [[v / max(1, sum(row)) for v in row] for row in matrix]
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    n = len(class_names)
    ax.set_xticks(range(n), class_names, rotation=60, ha="right", fontsize="small")
    ax.set_yticks(range(n), class_names, fontsize="small")
    ax.set(xlabel="predicted", ylabel="true", title="test confusion matrix")
    for i in range(n):
        for j in range(n):
            color = "white" if rows[i][j] > 0.5 else "black"
            ax.text(j, i, matrix[i][j], ha="center", va="center", fontsize=6, color=color)
    fig.colorbar(image, ax=ax, label="share of the true class")
    return _svg(fig)


def _number(text) -> float | str:
    try:
        return float(text)
    except (TypeError, ValueError):
        return str(text)


def _svg(fig: Figure) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg")
    return out.getvalue()
