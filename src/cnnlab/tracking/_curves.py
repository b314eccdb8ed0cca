"""The learning-curve figure logged with every run (SVG text, no display needed)."""

from __future__ import annotations

import io

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def learning_curves_svg(history, title: str = "") -> str:
    """Losses (train, validation) and validation accuracy against epoch, side by side."""
    epochs = [m.epoch for m in history]
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [m.train_loss for m in history], marker="o", label="train loss")
    loss_ax.plot(epochs, [m.val_loss for m in history], marker="o", label="validation loss")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    loss_ax.legend()
    acc_ax.plot(epochs, [m.val_accuracy for m in history], marker="o", color="tab:green")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy")
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    out = io.StringIO()
    fig.savefig(out, format="svg")
    return out.getvalue()
