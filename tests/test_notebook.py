"""The example notebook, executed headless as a user would run it, checked cell by cell."""

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from mlflow import MlflowClient
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        data = out.get("data", {})
        parts += [data.get("text/plain", ""), data.get("text/html", "")]
    return "\n".join(parts)


def _runs(client: MlflowClient, experiment: str) -> list:
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


@pytest.mark.slow
def test_quickstart_notebook_runs_headless(tmp_path, monkeypatch, fmnist, empty_store):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # The default store made (as a user's first run leaves it), sparing the kernel MLflow's
    # seconds of making tables; the notebook's runs must still land in it (checked below).
    empty_store(tmp_path / "cnnlab-runs" / "mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path}/cnnlab-runs/mlflow.db")
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    nb = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    summary, run, history, search, written, best = (_text(c) for c in code)
    assert "<pre>" in summary and "Conv2d" in summary and "final feature map" in summary
    assert re.search(r"test_accuracy</th><td[^>]*>0\.\d{4}", run)
    assert "val_accuracy" in history and "train_loss" in history
    assert search.count("ok") >= 4 and "model.filters" in search
    assert "report.html" in written and (tmp_path / "quickstart-report" / "report.html").exists()
    measured, logged = re.search(
        r"test accuracy (\d\.\d{4}) \(logged: (\d\.\d{4})\)", best
    ).groups()
    assert measured == logged and float(measured) > 0.5
    # Every run landed in ./cnnlab-runs: the training run, the search's parent and 4 trials.
    assert len(_runs(client, "quickstart")) == 1
    assert len(_runs(client, "quickstart-search")) == 1 + 4
