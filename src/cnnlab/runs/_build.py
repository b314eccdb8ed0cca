"""A config's network, checked by arithmetic before it is built and dissected by a dry run:
an impossible architecture is refused before any data is loaded or any run opened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnlab.config import Config
from cnnlab.data import DatasetInfo, dataset_info
from cnnlab.models import (
    BUILT_IN_MODELS,
    ArchitectureError,
    ModelSummary,
    check_architecture,
    create_model,
    summarize,
)
from cnnlab.training import seed_everything


@dataclass
class Built:
    model: Any
    summary: ModelSummary


def build(cfg: Config, info: DatasetInfo | None = None, data_dir: str | None = None) -> Built:
    """Checks the architecture by arithmetic, builds it, and dissects it by a dry run.

    The input shape and classes come from `info`, else from the config's dataset (a folder's
    are read from its images: DataError when they cannot be trusted)."""
    info = info or dataset_info(cfg.data, data_dir)
    input_shape, classes = info.input_shape, info.num_classes
    check_architecture(cfg.model, input_shape, classes)
    seed_everything(cfg.train.seed)  # initial weights depend on the seed alone
    if cfg.model.name in BUILT_IN_MODELS:
        model = create_model(cfg.model, input_shape, classes)
        return Built(model, summarize(model, input_shape))
    return _build_user_family(cfg, input_shape, classes)


def _build_user_family(cfg: Config, input_shape, classes: int) -> Built:
    """A family registered by the user has no arithmetic check of its own unless it brought
    one: its dry run stands in, so a network that cannot take the input (or gives the wrong
    number of outputs) is refused as an impossible architecture before any data is loaded."""
    import torch

    name = cfg.model.name
    try:
        model = create_model(cfg.model, input_shape, classes)
        summary = summarize(model, input_shape)
        with torch.no_grad():
            shape = tuple(model.eval()(torch.zeros(2, *input_shape)).shape)
        model.train()
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArchitectureError(
            f"model: family {name!r} fails on a {'x'.join(map(str, input_shape))} input: {first}"
        ) from None
    if shape != (2, classes):
        raise ArchitectureError(
            f"model: family {name!r} gives outputs of shape {list(shape[1:])} per image, "
            f"expected [{classes}] (one logit per class)"
        )
    return Built(model, summary)


def architecture_params(summary: ModelSummary, classes: int | None = None) -> dict[str, Any]:
    """The facts of the built model, logged beside the config so every run shows what it trained
    (the classes too: a loss is read against that of a uniform guess, ln(classes))."""
    facts: dict[str, Any] = {
        "arch.total_params": summary.total_params,
        "arch.macs_per_image": summary.total_macs,
    }
    if classes is not None:
        facts["arch.classes"] = classes
    if summary.final_map is not None:
        facts["arch.final_map"] = "x".join(map(str, summary.final_map))
        facts["arch.spatial_chain"] = " -> ".join(map(str, summary.spatial_chain))
    return facts
