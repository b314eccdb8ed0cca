"""Fixtures for tiny searches; plain helpers live in search_helpers.py."""

from __future__ import annotations

import re

import pytest
from search_helpers import SMALL_SPACE, TINY_SEARCH, space_override

from cnnlab.config import load_config
from cnnlab.tracking import store_file


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """One MLflow store for the in-process searches (creating one costs seconds); each test
    keeps to its own experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('store')}/mlflow.db"


@pytest.fixture
def made_store(empty_store):
    """made_store(uri): the empty store copied to where `uri` (sqlite:///...) has its file."""

    def make(uri: str) -> str:
        return empty_store(store_file(uri))

    return make


@pytest.fixture
def experiment(request):
    return re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")


@pytest.fixture
def search_cfg(experiment):
    def make(*overrides: str, space: dict = SMALL_SPACE):
        tracking = f'tracking.experiment="{experiment}"'
        return load_config(None, [*TINY_SEARCH, tracking, space_override(space), *overrides])

    return make


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory; the default store would appear in ./cnnlab-runs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path
