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


def curves_svg(groups: dict[str, list[RunRecord]], key: str) -> str:
    """One line per group of runs (a variant over its seeds) of the per-epoch metric `key`:
    the mean per epoch, shaded from its minimum to its maximum when there are several runs."""
    title, ylabel = _TITLES[key]
    fig = Figure(figsize=(7.5, 4), layout="constrained")
    ax = fig.subplots()
    for label, runs in groups.items():
        by_epoch: dict[int, list[float]] = {}
        for run in runs:
            for epoch, value in run.history.get(key, []):
                by_epoch.setdefault(epoch, []).append(value)
        if not by_epoch:
            continue
        epochs = sorted(by_epoch)
        means = [sum(by_epoch[e]) / len(by_epoch[e]) for e in epochs]
        n = len(runs)
        line = ax.plot(
            epochs, means, marker="o", markersize=3, label=label + (f" (n={n})" if n > 1 else "")
        )[0]
        if n > 1:
            low = [min(by_epoch[e]) for e in epochs]
            high = [max(by_epoch[e]) for e in epochs]
            ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if groups:
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
