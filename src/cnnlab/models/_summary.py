"""The architecture dissection: every leaf layer's output shape, parameters and multiply-adds,
measured by one dry run, plus the spatial chain and warnings about what reaches the head.

    summary = summarize(model, (1, 28, 28))
    print(format_summary(summary))
    json.dumps(summary.to_dict())
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnlab.models._blocks import dry_run

# Layers that change the spatial size inside the feature stack; adaptive pools in the head do not
# count, since they only collapse whatever map arrives.
_SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
_SMALL_MAP = 2  # final maps this size or smaller (both sides) earn a warning


@dataclass
class LayerRow:
    name: str  # dotted module path, e.g. "features.0.0"
    type: str  # class name, e.g. "Conv2d"
    out_shape: tuple[int, ...]  # per image: (C, H, W) or (F,)
    params: int  # parameters the layer itself owns
    macs: int  # multiply-adds per image; 0 for layers that only compare or rescale


@dataclass
class ModelSummary:
    layers: list[LayerRow]  # leaf modules in the order they ran
    total_params: int
    trainable_params: int
    total_macs: int  # multiply-adds per image
    final_map: tuple[int, int, int] | None  # (C, H, W) out of `features`; None without one
    spatial_chain: list[int]  # input H, then H after every conv and pool; empty without any
    warnings: list[str] = field(default_factory=list)
    input_shape: tuple[int, ...] = (1, 28, 28)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (tuples become lists), for `--json` output and MLflow."""
        return _jsonable(dataclasses.asdict(self))

    def __str__(self) -> str:
        return format_summary(self)

    def _repr_html_(self) -> str:  # Jupyter: the same table, kept monospaced
        import html

        return f"<pre>{html.escape(format_summary(self))}</pre>"


def summarize(model: nn.Module, input_shape: Sequence[int] = (1, 28, 28)) -> ModelSummary:
    """Dry-run one zero image through `model` with hooks on its leaf modules."""
    rows: list[LayerRow] = []
    chain: list[int] = []
    final: list[tuple[int, ...]] = []
    handles = [
        module.register_forward_hook(_row_hook(name or type(module).__name__, rows, chain))
        for name, module in model.named_modules()
        if next(module.children(), None) is None
    ]
    features = getattr(model, "features", None)
    if isinstance(features, nn.Module):
        handles.append(features.register_forward_hook(lambda m, i, out: final.append(_shape(out))))
    try:
        dry_run(model, input_shape)
    finally:
        for handle in handles:
            handle.remove()
    final_map = final[0] if final and len(final[0]) == 3 else None
    return ModelSummary(
        layers=rows,
        total_params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        total_macs=sum(row.macs for row in rows),
        final_map=final_map,  # type: ignore[arg-type]
        spatial_chain=[input_shape[1], *chain] if chain else [],
        warnings=_warnings(final_map),
        input_shape=tuple(input_shape),
    )


def _row_hook(name: str, rows: list[LayerRow], chain: list[int]) -> Any:
    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        shape = _shape(output)
        params = sum(p.numel() for p in module.parameters(recurse=False))
        rows.append(LayerRow(name, type(module).__name__, shape, params, _macs(module, output)))
        if isinstance(module, _SPATIAL) and len(shape) == 3:
            chain.append(shape[1])

    return hook


def _macs(module: nn.Module, output: Any) -> int:
    """Multiply-adds per image (the dry run's batch is 1); bias additions are not counted."""
    if not isinstance(output, torch.Tensor):
        return 0
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def _shape(output: Any) -> tuple[int, ...]:
    return tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else ()


def _warnings(final_map: tuple[int, ...] | None) -> list[str]:
    if final_map is None or max(final_map[1:]) > _SMALL_MAP:
        return []
    h, w = final_map[1:]
    return [
        f"final feature map is {h}x{w}: very little spatial information reaches the head "
        "(the study's 2x2 finding); consider fewer blocks or more padding"
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------- text


def format_summary(summary: ModelSummary) -> str:
    """A fixed-width table (name, type, output, params, MACs), then totals, map and warnings."""
    header = ("layer", "type", "output", "params", "MACs")
    cells = [
        (r.name, r.type, _dims(r.out_shape), f"{r.params:,}", f"{r.macs:,}") for r in summary.layers
    ]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    lines = [_line(header, widths), "  ".join("-" * w for w in widths)]
    lines += [_line(row, widths) for row in cells]
    lines += [
        "",
        f"parameters: {summary.total_params:,} ({summary.trainable_params:,} trainable)",
        f"multiply-adds per image: {summary.total_macs:,}",
    ]
    if summary.final_map is not None:
        lines.append(f"final feature map: {_dims(summary.final_map)}")
    if summary.spatial_chain:
        lines.append("spatial chain: " + " -> ".join(map(str, summary.spatial_chain)))
    lines += [f"warning: {text}" for text in summary.warnings]
    return "\n".join(lines)


def _line(cells: Sequence[str], widths: list[int]) -> str:
    # Text columns align left, numbers right, so digits line up.
    left = [c.ljust(w) for c, w in zip(cells[:3], widths[:3], strict=True)]
    right = [c.rjust(w) for c, w in zip(cells[3:], widths[3:], strict=True)]
    return "  ".join(left + right).rstrip()


def _dims(shape: Sequence[int]) -> str:
    return " x ".join(map(str, shape))
