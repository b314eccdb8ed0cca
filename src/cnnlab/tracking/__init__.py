"""Tracking: MLflow observes training through a callback; nothing here is imported by the loop.

tracking = MlflowTracking(resolve_uri(cfg.tracking, cli_override))   # or NoTracking()
with tracking.tracker(RunSpec(cfg.tracking.experiment, flatten(cfg), tags)) as tracker:
    fit(model, splits, cfg.train, callbacks=[tracker])

Store(uri) is the one way cnnlab's modules read and write MLflow experiments and runs.
"""

from cnnlab.tracking._adapter import Store
from cnnlab.tracking._choice import MlflowTracking, NoTracking, RunSpec, Tracking
from cnnlab.tracking._server import TrackingUnavailable, server_command
from cnnlab.tracking._store import (
    default_uri,
    prepare_store,
    resolve_uri,
    store_file,
)
from cnnlab.tracking._tracker import CONFUSION_ARTIFACT

__all__ = [
    "CONFUSION_ARTIFACT",
    "MlflowTracking",
    "NoTracking",
    "RunSpec",
    "Store",
    "Tracking",
    "TrackingUnavailable",
    "default_uri",
    "prepare_store",
    "resolve_uri",
    "server_command",
    "store_file",
]
