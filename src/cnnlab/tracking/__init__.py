"""Tracking: MLflow observes training through a callback; nothing here is imported by the loop.

tracking = MlflowTracking(resolve_uri(cfg.tracking, cli_override))   # or NoTracking()
with tracking.tracker(RunSpec(cfg.tracking.experiment, flatten(cfg), tags)) as tracker:
    fit(model, splits, cfg.train, callbacks=[tracker])

Store(uri) is the one way cnnlab's modules read and write MLflow experiments and runs.

A team server: server_command(..., auth=True) runs MLflow's basic-auth app; add_user(uri, name,
password) and grant(uri, name, experiment, "EDIT") manage its users, as the admin. A server that
refuses a client raises TrackingDenied (exit 7); one that does not answer TrackingUnavailable.
"""

from cnnlab.tracking._adapter import Store
from cnnlab.tracking._auth import (
    ADMIN_PASSWORD_ENV,
    PERMISSIONS,
    USER_PASSWORD_ENV,
    Grant,
    TeamUser,
    add_user,
    grant,
    read_secret,
    typed_password,
)
from cnnlab.tracking._choice import MlflowTracking, NoTracking, RunSpec, Tracking
from cnnlab.tracking._errors import TrackingDenied, TrackingUnavailable
from cnnlab.tracking._server import ServerLaunch, server_command
from cnnlab.tracking._store import (
    default_uri,
    prepare_store,
    resolve_uri,
    store_file,
)
from cnnlab.tracking._tracker import CONFUSION_ARTIFACT

__all__ = [
    "ADMIN_PASSWORD_ENV",
    "CONFUSION_ARTIFACT",
    "PERMISSIONS",
    "USER_PASSWORD_ENV",
    "Grant",
    "MlflowTracking",
    "NoTracking",
    "RunSpec",
    "ServerLaunch",
    "Store",
    "TeamUser",
    "Tracking",
    "TrackingDenied",
    "TrackingUnavailable",
    "add_user",
    "default_uri",
    "grant",
    "prepare_store",
    "read_secret",
    "resolve_uri",
    "server_command",
    "store_file",
    "typed_password",
]
