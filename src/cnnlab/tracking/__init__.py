"""Tracking: MLflow observes training through a callback; nothing here is imported by the loop.

uri = resolve_uri(cfg.tracking, cli_override)
with MlflowTracker(uri, cfg.tracking.experiment, params=flatten(cfg)) as tracker:
    fit(model, splits, cfg.train, callbacks=[tracker])
"""

from cnnlab.tracking._curves import learning_curves_svg
from cnnlab.tracking._server import TrackingUnavailable, is_loopback, probe, server_command
from cnnlab.tracking._store import (
    artifact_location,
    client,
    default_uri,
    experiment_id,
    git_commit,
    prepare_store,
    resolve_uri,
    run_tags,
    store_file,
)
from cnnlab.tracking._tracker import CONFUSION_ARTIFACT, MlflowTracker

__all__ = [
    "CONFUSION_ARTIFACT",
    "MlflowTracker",
    "TrackingUnavailable",
    "is_loopback",
    "probe",
    "server_command",
    "artifact_location",
    "client",
    "default_uri",
    "experiment_id",
    "git_commit",
    "learning_curves_svg",
    "prepare_store",
    "resolve_uri",
    "run_tags",
    "store_file",
]
