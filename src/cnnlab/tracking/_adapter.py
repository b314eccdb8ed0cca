"""The one way cnnlab reaches MLflow: a store of experiments and runs, in cnnlab's terms.

    store = Store("sqlite:///cnnlab-runs/mlflow.db")
    exp_id = store.ensure_experiment("cnnlab")          # created (or restored) on first use
    run_id = store.create_run(exp_id, run_name="tiny", tags={"cnnlab.model": "cnn"}).info.run_id
    store.log_params(run_id, {"train.lr": 0.001, "model.hidden_units": [32]})
    store.log_metrics(run_id, {"val_loss": 0.41}, step=1)
    store.terminate(run_id, "FINISHED")

MLflow's batch limits (100 params or tags, 1000 metrics) and its longest param value are met
here, so callers hand over whole dicts.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from cnnlab.config import ConfigError
from cnnlab.tracking._store import artifact_location, client

PARAM_LIMIT = 6000  # MLflow's longest param value
PARAMS_PER_BATCH = 100  # MLflow's limits on one log_batch call
TAGS_PER_BATCH = 100
METRICS_PER_BATCH = 1000


class Measurement(NamedTuple):
    """One value of a metric at a step, stamped when it was measured (ms since the epoch)."""

    key: str
    value: float
    step: int
    timestamp: int


def measurements(values: dict[str, float], step: int) -> list[Measurement]:
    """`values` at `step`, all stamped now."""
    now = int(time.time() * 1000)
    return [Measurement(k, float(v), step, now) for k, v in values.items()]


_RUN_ID = re.compile(r"[A-Za-z0-9_-]+")  # MLflow's ids are 32 hex digits; doubles use others


def run_id_of(reference: str) -> str:
    """The run id in a run reference, as every command takes one: "<id>", "runs:/<id>" or
    "runs:/<id>/<artifact path>" (e.g. runs:/3f2a.../mlflow_model); ConfigError otherwise."""
    text = reference.strip()
    if text.startswith("runs:/"):
        text = text.removeprefix("runs:/").lstrip("/").split("/", 1)[0]
    if not _RUN_ID.fullmatch(text):
        raise ConfigError(f"run: expected a run id or runs:/<run id>[/<path>], got {reference!r}")
    return text


def filter_value(text: str) -> str | None:
    """`text` quoted as a value of an MLflow filter string; None when it holds both kinds of
    quote. MLflow's parser strips the quotes around a value but unescapes nothing inside, so
    the quote must be one that the text does not hold."""
    for quote in ("'", '"'):
        if quote not in text:
            return f"{quote}{text}{quote}"
    return None


def param_text(value: Any) -> str:
    """A param value as runs record it: lists and booleans as JSON (`[32]`, `true`), else str()."""
    return json.dumps(value) if isinstance(value, list | bool) else str(value)


class Store:
    """Experiments and runs of one tracking URI (an embedded SQLite file, a database, a server).

    Reads return MLflow's Run and Experiment entities (`run.info.status`, `run.data.tags`,
    `experiment.tags`) or plain values; writes take plain dicts."""

    def __init__(self, uri: str):
        self.uri = uri
        self._client = client(uri)

    # ------------------------------------------------------------ experiments

    def ensure_experiment(self, name: str) -> str:
        """The id of experiment `name`: created on first use (artifacts beside an embedded
        store), restored when it was deleted."""
        found = self._client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self._client.restore_experiment(found.experiment_id)
            return found.experiment_id
        from mlflow.exceptions import MlflowException

        try:
            return self._client.create_experiment(
                name, artifact_location=artifact_location(self.uri)
            )
        except MlflowException:
            # Another process created it between our lookup and create; use theirs.
            return self._client.get_experiment_by_name(name).experiment_id

    def find_experiment(self, name: str):
        """Experiment `name` (an mlflow Experiment), or None when the store has none by it."""
        return self._client.get_experiment_by_name(name)

    def experiment(self, experiment_id: str):
        """The experiment of that id (an mlflow Experiment: `.name`, `.tags`)."""
        return self._client.get_experiment(experiment_id)

    def experiments(self) -> list:
        """The store's active experiments (mlflow Experiments), Default included."""
        return list(self._client.search_experiments())

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Sets (or replaces) one tag of the experiment."""
        self._client.set_experiment_tag(experiment_id, key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Removes one tag of the experiment."""
        self._client.delete_experiment_tag(experiment_id, key)

    # ------------------------------------------------------------ reading runs

    def search_runs(
        self,
        experiment_ids: list[str],
        where: str = "",
        order_by: list[str] | None = None,
        max_results: int = 5000,
    ) -> list:
        """Runs (mlflow Runs) of these experiments matching the filter `where` (MLflow's
        search syntax, e.g. "tags.`cnnlab.trial` = '3'"), in `order_by` order."""
        return list(
            self._client.search_runs(
                experiment_ids, filter_string=where, order_by=order_by, max_results=max_results
            )
        )

    def get_run(self, run_id: str):
        """The run of that id (an mlflow Run); MlflowException when there is none."""
        return self._client.get_run(run_id)

    def find_run(self, run_id: str):
        """The run of that id (an mlflow Run), or None when the store has none. A refusal
        (TrackingDenied) or any other failure goes on up: it is not an answer about the run."""
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_run(run_id)
        except MlflowException as exc:
            if _not_found(exc):
                return None
            raise

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """Every logged value of metric `key`, as (step, value) pairs in step order."""
        return sorted((m.step, m.value) for m in self._client.get_metric_history(run_id, key))

    def download_artifacts(self, run_id: str, path: str, folder: str) -> str:
        """Fetches the run's artifact `path` (a file or a folder) into `folder`; returns its local
        path. FileNotFoundError when the run has no such artifact; a refusal (TrackingDenied)
        or an outage goes on up as itself."""
        from mlflow.exceptions import MlflowException

        try:
            return self._client.download_artifacts(run_id, path, folder)
        except MlflowException as exc:
            if _not_found(exc):
                raise FileNotFoundError(f"run {run_id}: no artifact {path}") from None
            raise

    # ------------------------------------------------------------ writing runs

    def create_run(
        self,
        experiment_id: str,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
        parent_id: str | None = None,
    ):
        """A new RUNNING run (an mlflow Run), nested under `parent_id` when given."""
        tags = dict(tags or {})
        if parent_id:
            tags["mlflow.parentRunId"] = parent_id
        return self._client.create_run(experiment_id, run_name=run_name or None, tags=tags)

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Params as text (see param_text), each cut to MLflow's longest value."""
        from mlflow.entities import Param

        batch = [Param(k, param_text(v)[:PARAM_LIMIT]) for k, v in params.items()]
        for start in range(0, len(batch), PARAMS_PER_BATCH):
            self._client.log_batch(run_id, params=batch[start : start + PARAMS_PER_BATCH])

    def log_metrics(self, run_id: str, values: dict[str, float], step: int) -> None:
        """`values` at `step`, stamped now."""
        self.log_measurements(run_id, measurements(values, step))

    def log_measurements(self, run_id: str, points: list[Measurement]) -> None:
        """Metric values measured earlier, in order; a failure may leave a prefix logged, so a
        caller that retries sends at most METRICS_PER_BATCH at a time."""
        from mlflow.entities import Metric

        batch = [Metric(p.key, p.value, p.timestamp, p.step) for p in points]
        for start in range(0, len(batch), METRICS_PER_BATCH):
            self._client.log_batch(run_id, metrics=batch[start : start + METRICS_PER_BATCH])

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Sets (or replaces) these run tags; nothing for an empty dict."""
        from mlflow.entities import RunTag

        batch = [RunTag(k, v) for k, v in tags.items()]
        for start in range(0, len(batch), TAGS_PER_BATCH):
            self._client.log_batch(run_id, tags=batch[start : start + TAGS_PER_BATCH])

    def log_artifact(self, run_id: str, path: str | Path, folder: str | None = None) -> None:
        """Uploads the local file `path` into the run's artifacts (under `folder`)."""
        self._client.log_artifact(run_id, str(path), artifact_path=folder)

    def log_artifacts(self, run_id: str, folder: str | Path, artifact_path: str) -> None:
        """Uploads the local folder's files into the run's artifacts under `artifact_path`."""
        self._client.log_artifacts(run_id, str(folder), artifact_path=artifact_path)

    def register_version(self, name: str, run_id: str, folder: str, tags: dict[str, str]):
        """A new version of the registered model `name` (created when new) from the run's
        artifact `folder`; returns MLflow's ModelVersion."""
        from mlflow.exceptions import MlflowException

        source = f"{self.get_run(run_id).info.artifact_uri.rstrip('/')}/{folder}"
        try:
            self._client.get_registered_model(name)
        except MlflowException:
            self._client.create_registered_model(name)
        return self._client.create_model_version(name, source, run_id=run_id, tags=tags)

    def model_versions(self, name: str) -> list:
        """Every version of the registered model `name` (MLflow's ModelVersion objects)."""
        quoted = filter_value(name)
        if quoted is not None:
            return list(self._client.search_model_versions(f"name={quoted}"))
        # No filter can name it: every version of the registry, then this model's.
        return [v for v in self._client.search_model_versions("") if v.name == name]

    def log_texts(self, run_id: str, files: dict[str, str]) -> None:
        """Each {file name: text} as an artifact file of the run."""
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in files.items():
                path = Path(tmp) / name
                path.write_text(text, encoding="utf-8")
                self.log_artifact(run_id, path)

    def terminate(self, run_id: str, status: str) -> None:
        """Ends the run: FINISHED, FAILED or KILLED."""
        self._client.set_terminated(run_id, status=status)

    def reopen(self, run_id: str) -> None:
        """Marks an ended run RUNNING again (a resumed search's parent)."""
        self._client.update_run(run_id, status="RUNNING")

    def delete_run(self, run_id: str) -> None:
        """Moves the run to the store's trash: searches no longer find it."""
        self._client.delete_run(run_id)


# What MLflow answers for a run or an artifact that is not there (the REST API says 404 or
# "invalid parameter" for a malformed id): an answer about the thing, not a failure to ask.
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def _not_found(exc) -> bool:
    return exc.error_code in _NOT_FOUND or exc.get_http_status_code() == 404
