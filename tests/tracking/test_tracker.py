import json
from pathlib import Path

import mlflow
import pytest
import torch

from cnnlab.models import create_model
from cnnlab.runs import train_run
from cnnlab.tracking import default_uri, resolve_uri
from cnnlab.tracking._store import artifact_location
from cnnlab.training import Callback, Normalize, Runtime, evaluate


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return default_uri(tmp_path / "runs")


def runs(uri, experiment="cnnlab"):
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


@pytest.mark.slow
def test_a_run_records_everything(tiny_cfg, tiny_splits, store, tmp_path):
    cfg = tiny_cfg("tracking.run_name=tiny")
    outcome = train_run(cfg, tracking_uri=store, splits=tiny_splits)
    mlflow.set_tracking_uri(store)
    (run,) = runs(store)
    assert run.info.run_id == outcome.run_id and run.info.status == "FINISHED"
    assert run.info.run_name == "tiny"
    params = run.data.params
    assert params["model.filters"] == "8" and params["train.lr"] == "0.001"
    assert params["model.hidden_units"] == "[32]"
    assert params["arch.final_map"] == "8x6x6"
    assert params["arch.spatial_chain"] == "28 -> 28 -> 14 -> 12 -> 6"
    assert run.data.metrics["test_accuracy"] == outcome.result.test_accuracy
    assert run.data.tags["cnnlab.version"] and run.data.tags["cnnlab.data_checksum"]
    result = outcome.result
    assert run.data.tags["cnnlab.compute"] == result.compute.describe()
    assert run.data.tags["cnnlab.compute"].startswith(f"cpu, {result.compute.precision}, ")
    client = mlflow.MlflowClient(store)
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2]
    for key in ("train_loss", "val_accuracy", "lr", "images_seen"):
        assert len(client.get_metric_history(run.info.run_id, key)) == 2
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.toml", "architecture.txt", "architecture.json", "learning_curves.svg"} <= names
    assert run.info.artifact_uri.startswith((tmp_path / "runs" / "artifacts").as_uri())


@pytest.mark.slow
def test_logged_weights_and_config_rebuild_the_model(tiny_cfg, tiny_splits, store, tmp_path):
    from cnnlab.config import load_config

    outcome = train_run(tiny_cfg(), tracking_uri=store, splits=tiny_splits)
    mlflow.set_tracking_uri(store)
    folder = mlflow.artifacts.download_artifacts(run_id=outcome.run_id, dst_path=str(tmp_path))
    cfg = load_config(f"{folder}/config.toml")
    state = torch.load(f"{folder}/model/state_dict.pt", weights_only=True)
    model = create_model(cfg.model)
    model.load_state_dict(state)
    norm = Normalize(tiny_splits.mean, tiny_splits.std)
    # The run tested in its own precision and layout (bf16 on CPUs that have it): so does this.
    runtime = Runtime.from_config(cfg.train, torch.device("cpu"), model)
    runtime.prepare(model)
    loss, acc = evaluate(model, tiny_splits.test_x, tiny_splits.test_y, norm, 500, runtime)
    assert acc == outcome.result.test_accuracy
    assert loss == pytest.approx(outcome.result.test_loss, rel=1e-6)
    arch = json.loads(Path(folder, "architecture.json").read_text())
    assert arch["final_map"] == [8, 6, 6]
    assert Path(folder, "learning_curves.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.slow
@pytest.mark.parametrize("error, status", [(RuntimeError, "FAILED"), (KeyboardInterrupt, "KILLED")])
def test_run_never_stays_running(error, status, tiny_cfg, tiny_splits, store):
    class Boom(Callback):
        def on_epoch_end(self, state, metrics):
            raise error("boom")

    with pytest.raises(error):
        train_run(tiny_cfg(), tracking_uri=store, splits=tiny_splits, callbacks=[Boom()])
    mlflow.set_tracking_uri(store)
    (run,) = runs(store)
    assert run.info.status == status
    assert run.data.tags["cnnlab.error"].startswith(error.__name__)


def test_uri_precedence(monkeypatch, tmp_path):
    from cnnlab.config import TrackingConfig

    cfg = TrackingConfig(runs_dir=str(tmp_path / "r"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_uri(cfg) == f"sqlite:///{tmp_path}/r/mlflow.db"
    assert resolve_uri(TrackingConfig(uri="sqlite:///x.db")) == "sqlite:///x.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert resolve_uri(cfg) == "http://127.0.0.1:1"
    assert resolve_uri(cfg, "sqlite:///y.db") == "sqlite:///y.db"
    assert artifact_location("http://127.0.0.1:1") is None
