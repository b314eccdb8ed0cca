"""Tracking: MLflow observes training through a callback; nothing here is imported by the loop.

tracking = MlflowTracking(resolve_uri(cfg.tracking, cli_override))   # or NoTracking()
with tracking.tracker(RunSpec(cfg.tracking.experiment, flatten(cfg), tags)) as tracker:
    fit(model, splits, cfg.train, callbacks=[tracker])

Store(uri) is the one way cnnlab's modules read and write MLflow experiments and runs;
open_store(uri) opens one to read, checked within seconds and never created. shown(text) is
how every message, report and printed line names a store: without its password. A new
embedded store is a copy of an empty migrated one cached per MLflow version (seed_store).

A team server: server_command(..., auth=True) runs MLflow's basic-auth app; add_user(uri, name,
password) and grant(uri, name, experiment, "EDIT") manage its users, as the admin. A server that
refuses a client raises TrackingDenied (exit 7); one that does not answer TrackingUnavailable.
"""

from cnnlab.tracking._access import is_remote, shown
from cnnlab.tracking._adapter import Store, filter_value, param_text, run_id_of
from cnnlab.tracking._auth import (
    ADMIN_PASSWORD_ENV,
    CREDENTIAL_CACHE_SECONDS,
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
from cnnlab.tracking._open import check_store, open_store
from cnnlab.tracking._server import ServerLaunch, light_environ, server_command
from cnnlab.tracking._store import (
    default_uri,
    prepare_store,
    resolve_uri,
    run_tags,
    store_file,
)
from cnnlab.tracking._template import seed_store, template_path
from cnnlab.tracking._tracker import CONFUSION_ARTIFACT, checkpoint_file

__all__ = [
    "ADMIN_PASSWORD_ENV",
    "CONFUSION_ARTIFACT",
    "CREDENTIAL_CACHE_SECONDS",
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
    "checkpoint_file",
    "check_store",
    "default_uri",
    "filter_value",
    "grant",
    "light_environ",
    "open_store",
    "param_text",
    "prepare_store",
    "read_secret",
    "resolve_uri",
    "run_id_of",
    "run_tags",
    "server_command",
    "seed_store",
    "shown",
    "is_remote",
    "store_file",
    "template_path",
    "typed_password",
]
