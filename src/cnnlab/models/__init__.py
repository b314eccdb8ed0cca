"""Models by name, the cheap architecture check, and the architecture dissection.

from cnnlab.models import create_model, check_architecture, summarize, format_summary

check_architecture(cfg.model)              # ArchitectureError before any module exists
model = create_model(cfg.model, (1, 28, 28), num_classes=10)
print(format_summary(summarize(model, (1, 28, 28))))
"""

from cnnlab.models._blocks import ACTIVATIONS, ArchitectureError, FeaturesHead, make_activation
from cnnlab.models._mlp import Mlp
from cnnlab.models._plan import BlockPlan, plan_cnn
from cnnlab.models._registry import (
    BUILT_IN_MODELS,
    FAMILIES,
    Family,
    ModelBuilder,
    check_architecture,
    create_model,
    register_model,
)
from cnnlab.models._summary import LayerRow, ModelSummary, format_summary, summarize

__all__ = [
    "ACTIVATIONS",
    "BUILT_IN_MODELS",
    "FAMILIES",
    "ArchitectureError",
    "BlockPlan",
    "Family",
    "FeaturesHead",
    "LayerRow",
    "Mlp",
    "ModelBuilder",
    "ModelSummary",
    "check_architecture",
    "create_model",
    "format_summary",
    "make_activation",
    "plan_cnn",
    "register_model",
    "summarize",
]
