"""A run's tracking is an object passed to train_run: MLflow, nothing, or a test's double."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from cnnlab.config import flatten
from cnnlab.runs import train_run
from cnnlab.tracking import MlflowTracking, NoTracking
from cnnlab.training import Callback


class RecordingStore:
    """An in-memory stand-in for Store: what each run logged, by run id."""

    def __init__(self):
        self.runs: dict[str, dict] = {}

    def ensure_experiment(self, name: str) -> str:
        return f"exp-{name}"

    def create_run(self, experiment_id, run_name=None, tags=None, parent_id=None):
        run_id = f"run-{len(self.runs)}"
        self.runs[run_id] = {
            "experiment": experiment_id,
            "name": run_name,
            "parent": parent_id,
            "tags": dict(tags or {}),
            "params": {},
            "metrics": [],
            "artifacts": [],
            "status": "RUNNING",
        }
        return SimpleNamespace(info=SimpleNamespace(run_id=run_id))

    def log_params(self, run_id, params):
        self.runs[run_id]["params"].update(params)

    def log_texts(self, run_id, files):
        self.runs[run_id]["artifacts"] += list(files)

    def log_artifact(self, run_id, path, folder=None):
        self.runs[run_id]["artifacts"].append(Path(path).name)

    def log_artifacts(self, run_id, folder, artifact_path):
        self.runs[run_id]["artifacts"].append(artifact_path)

    def log_measurements(self, run_id, points):
        self.runs[run_id]["metrics"] += points

    def set_tags(self, run_id, tags):
        self.runs[run_id]["tags"].update(tags)

    def terminate(self, run_id, status):
        self.runs[run_id]["status"] = status


def test_a_recording_store_sees_the_config_every_epoch_and_the_end(tiny_cfg, tiny_splits):
    store = RecordingStore()
    cfg = tiny_cfg("tracking.run_name=recorded", "tracking.log_weights=false")
    tracking = MlflowTracking("memory:", store=store)
    outcome = train_run(cfg, splits=tiny_splits, tracking=tracking, parent_run_id="parent-1")
    ((run_id, run),) = store.runs.items()
    assert outcome.run_id == run_id and outcome.tracking_uri == "memory:"
    assert run["status"] == "FINISHED" and run["name"] == "recorded"
    assert run["experiment"] == "exp-cnnlab" and run["parent"] == "parent-1"
    assert all(run["params"][key] == value for key, value in flatten(cfg).items())
    assert run["params"]["arch.final_map"] == "8x6x6"
    history = outcome.result.history
    val_loss = [(p.step, p.value) for p in run["metrics"] if p.key == "val_loss"]
    assert val_loss == [(m.epoch, m.val_loss) for m in history] and len(val_loss) == 2
    final = {p.key: p.value for p in run["metrics"] if p.step == outcome.result.epochs_run}
    assert final["test_accuracy"] == outcome.result.test_accuracy
    assert run["tags"]["cnnlab.model"] == "cnn" and run["tags"]["cnnlab.data_checksum"]
    assert "cnnlab.version" in run["tags"] and "cnnlab.compute" in run["tags"]
    assert {"config.toml", "architecture.json", "learning_curves.svg"} <= set(run["artifacts"])
    assert "state_dict.pt" not in run["artifacts"]  # tracking.log_weights = false


def test_a_failing_run_ends_failed_in_the_double(tiny_cfg, tiny_splits):
    class Boom(Callback):
        def on_epoch_end(self, state, metrics):
            raise RuntimeError("boom")

    store = RecordingStore()
    with pytest.raises(RuntimeError):
        train_run(
            tiny_cfg(),
            splits=tiny_splits,
            tracking=MlflowTracking("memory:", store=store),
            callbacks=[Boom()],
        )
    (run,) = store.runs.values()
    assert run["status"] == "FAILED" and run["tags"]["cnnlab.error"] == "RuntimeError: boom"


def test_no_tracking_trains_without_a_store_or_a_server(
    tiny_cfg, tiny_splits, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing answers there
    outcome = train_run(tiny_cfg("train.epochs=1"), splits=tiny_splits, tracking=NoTracking())
    assert outcome.run_id is None and outcome.tracking_uri is None
    assert outcome.result.epochs_run == 1 and 0 < outcome.result.test_accuracy <= 1
    assert list(tmp_path.iterdir()) == []  # no runs folder, no store
