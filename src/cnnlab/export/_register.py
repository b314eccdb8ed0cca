"""The MLflow Model Registry: a run's model as a new version of a registered model.

    version = register_run(uri, run_id, "fashion-cnn", {"val_loss": "0.2412"})

Works on the SQLite store and on a tracking server alike (the registry lives in the same store).
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.config import ConfigError
from cnnlab.export._mlflow_model import MODEL_ARTIFACT
from cnnlab.tracking.tags import PARENT_RUN_TAG, SEARCH_ID_TAG


@dataclass
class Registered:
    name: str
    version: str
    run_id: str
    source: str  # the model's artifact location


def register_run(uri: str, run_id: str, name: str, tags: dict[str, str]) -> Registered:
    """Registers `run_id`'s MLflow model under `name` (created when new) with `tags`."""
    from cnnlab.tracking import Store

    if not name.strip():
        raise ConfigError("--register: expected a model name, got an empty one")
    version = Store(uri).register_version(name, run_id, MODEL_ARTIFACT, tags)
    return Registered(name, str(version.version), run_id, version.source)


def register_best(result, name: str) -> Registered | None:
    """A finished search's best trial (cnnlab.search.SearchResult), its validation figure and
    search as tags; None when no trial succeeded."""
    best = result.best
    if not name or best is None:
        return None
    tags = {
        result.objective: f"{best.value:.6g}",
        SEARCH_ID_TAG: result.search_id,
        PARENT_RUN_TAG: result.parent_run_id,
    }
    return register_run(result.tracking_uri, best.run_id, name, tags)
