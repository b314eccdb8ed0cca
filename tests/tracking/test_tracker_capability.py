"""Whether a run logs its MLflow model is asked of the tracker, not read off its class."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.runs import train_run
from cnnlab.training import Callback


class FolderTracker(Callback):
    """A destination other than MLflow that keeps folders (or says it does not)."""

    def __init__(self, logs_folders: bool):
        self.logs_folders = logs_folders
        self.run_id: str | None = None
        self.folders: dict[str, list[str]] = {}

    def __enter__(self) -> FolderTracker:
        self.run_id = "run-1"
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        return False

    def log_folder(self, folder: Path, artifact_path: str) -> None:
        self.folders[artifact_path] = sorted(p.name for p in folder.iterdir())


class FolderTracking:
    uri = None

    def __init__(self, logs_folders: bool):
        self.made = FolderTracker(logs_folders)

    def check(self) -> None:
        return None

    def tracker(self, run) -> FolderTracker:
        return self.made


@pytest.mark.parametrize("logs_folders", [True, False])
def test_a_tracker_that_keeps_folders_gets_the_model(tiny_cfg, tiny_splits, logs_folders):
    tracking = FolderTracking(logs_folders)
    train_run(tiny_cfg("train.epochs=1"), splits=tiny_splits, tracking=tracking)
    folders = tracking.made.folders
    if logs_folders:
        assert "MLmodel" in folders["mlflow_model"]
    else:
        assert folders == {}
