"""The learning-curve figure logged with every run, written as SVG text by hand.

Matplotlib took ~0.25 s per figure (plus ~0.5 s to import), most of the tracking overhead;
for two plain line plots, formatting the SVG ourselves takes about a millisecond.
"""

from __future__ import annotations

import math
import re
from itertools import groupby
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 900, 340
PANEL = WIDTH // 2  # two panels side by side
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 58, 290  # plot area inside a panel, px (y grows downward)
BLUE, ORANGE, GREEN = "#1f77b4", "#ff7f0e", "#2ca02c"  # matplotlib's colours, as before
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # invalid in XML 1.0 even when escaped


def learning_curves_svg(history, title: str = "") -> str:
    """Losses (train, validation) and validation accuracy against epoch, side by side."""
    epochs = [m.epoch for m in history]
    losses = [
        ("train loss", BLUE, [m.train_loss for m in history]),
        ("validation loss", ORANGE, [m.val_loss for m in history]),
    ]
    accuracy = [("validation accuracy", GREEN, [m.val_accuracy for m in history])]
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif" '
        'font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    if title:  # run names come from users: escape them, and drop what XML cannot hold
        parts.append(_text(WIDTH / 2, 22, escape(_NOT_XML.sub("", title)), size=15))
    parts += _panel(0, "loss", "cross-entropy loss", epochs, losses)
    parts += _panel(PANEL, "validation accuracy", "accuracy", epochs, accuracy)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _panel(x0: float, name: str, ylabel: str, epochs: list[int], series: list) -> list[str]:
    """One axes: labels, grid, ticks, a line per series and (with several) a legend."""
    left, right = x0 + LEFT, x0 + PANEL - RIGHT
    mid_x, mid_y = (left + right) / 2, (TOP + BOTTOM) / 2
    out = [
        _text(mid_x, TOP - 12, name, size=13),
        _text(mid_x, HEIGHT - 10, "epoch"),
        _text(x0 + 16, mid_y, ylabel, transform=f"rotate(-90 {x0 + 16} {mid_y})"),
    ]
    ys = [v for _, _, values in series for v in values if math.isfinite(v)]
    if not ys:  # e.g. no validation split: every val_* value is NaN
        out.append(_text(mid_x, mid_y, "no data", size=13, fill="#888"))
        return out + [_frame(left, right)]
    xlo, xhi = _padded(min(epochs), max(epochs), 0.5)  # one epoch still gets a width
    ylo, yhi = _padded(min(ys), max(ys), 0.05 * abs(ys[0]) or 0.5)

    def px(x: float) -> float:
        return left + (x - xlo) / (xhi - xlo) * (right - left)

    def py(y: float) -> float:
        return BOTTOM - (y - ylo) / (yhi - ylo) * (BOTTOM - TOP)

    grid = 'stroke="#b0b0b0" stroke-opacity="0.3" stroke-width="0.8"'
    for t, label in _ticks(xlo, xhi, integer=True):
        out.append(f'<line x1="{px(t):.1f}" y1="{TOP}" x2="{px(t):.1f}" y2="{BOTTOM}" {grid}/>')
        out.append(_text(px(t), BOTTOM + 15, label))
    for t, label in _ticks(ylo, yhi):
        out.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{right}" y2="{py(t):.1f}" {grid}/>')
        out.append(_text(left - 5, py(t) + 4, label, anchor="end"))
    for label, colour, values in series:
        points = [(px(e), py(v)) if math.isfinite(v) else None for e, v in zip(epochs, values)]
        out.append(_series(label, colour, points))
    out.append(_frame(left, right))
    if len(series) > 1:
        out += _legend(right - 130, TOP + 8, series)
    return out


def _padded(lo: float, hi: float, flat: float) -> tuple[float, float]:
    """A 5% margin around the data, as matplotlib leaves; `flat` each side when lo == hi."""
    margin = 0.05 * (hi - lo) if hi > lo else flat
    return lo - margin, hi + margin


def _ticks(lo: float, hi: float, integer: bool = False) -> list[tuple[float, str]]:
    """Three to eight round values (1, 2 or 5 x 10^k apart) inside [lo, hi], with labels."""
    raw = (hi - lo) / 7
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    if integer:  # epochs are whole numbers
        step = max(1, round(step))
    digits = max(0, -math.floor(math.log10(step) + 1e-9))  # enough to tell ticks apart
    # k * step, not repeated addition: no drift, and 0 comes out as exactly 0
    ks = range(math.ceil(lo / step), math.floor(hi / step) + 1)
    return [(k * step, f"{k * step:.{digits}f}") for k in ks]


def _series(label: str, colour: str, points: list) -> str:
    """A line broken where values are not finite (None), with a marker on every point."""
    out = [f'<g class="series" data-label="{label}" stroke="{colour}" fill="{colour}">']
    for finite, run in groupby(points, key=lambda p: p is not None):
        run = list(run)
        if finite and len(run) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            out.append(f'<polyline points="{coords}" fill="none" stroke-width="1.5"/>')
    out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"/>' for x, y in filter(None, points)]
    return "\n".join(out + ["</g>"])


def _legend(x: float, y: float, series: list) -> list[str]:
    """Top right, on a translucent box so lines running behind it stay visible."""
    out = [
        f'<rect x="{x}" y="{y}" width="122" height="{8 + 16 * len(series)}" rx="3" '
        'fill="white" fill-opacity="0.8" stroke="#ccc"/>'
    ]
    for i, (label, colour, _) in enumerate(series):
        row = y + 12 + 16 * i
        out.append(f'<line x1="{x + 6}" y1="{row}" x2="{x + 26}" y2="{row}" stroke="{colour}"/>')
        out.append(f'<circle cx="{x + 16}" cy="{row}" r="3" fill="{colour}"/>')
        out.append(_text(x + 32, row + 4, label, anchor="start"))
    return out


def _frame(left: float, right: float) -> str:
    return (
        f'<rect x="{left}" y="{TOP}" width="{right - left}" height="{BOTTOM - TOP}" '
        'fill="none" stroke="black" stroke-width="0.8"/>'
    )


def _text(x: float, y: float, content: str, size: int = 11, anchor: str = "middle", **attrs) -> str:
    """`content` must already be XML-safe: everything but the title is our own text."""
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{content}</text>"
    )
