"""A run's tags name cnnlab's version always, cnnlab's commit only when cnnlab runs from its
own checkout, and the user's commit only for the user's code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cnnlab
from cnnlab.tracking import MlflowTracking, RunSpec

PACKAGE = Path(cnnlab.__file__).resolve().parent
TAGS = (
    "import json, cnnlab\n"
    "from cnnlab.tracking import MlflowTracking, RunSpec\n"
    "tags = MlflowTracking('memory:').tracker(RunSpec('x', {}, {})).tags\n"
    "print(json.dumps({'tags': tags, 'from': cnnlab.__file__}))\n"
)


def _git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=u", "-c", "user.email=u@example.com"]
    out = subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _user_repo(tmp_path: Path, project: str = "mylab") -> tuple[Path, str]:
    """A user's repository holding a venv-like copy of cnnlab and a script; its HEAD."""
    repo = tmp_path / "work"
    site = repo / ".venv" / "lib" / "site-packages"
    shutil.copytree(PACKAGE, site / "cnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PACKAGE, repo / "src" / "cnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "pyproject.toml").write_text(f'[project]\nname = "{project}"\n')
    (repo / "train.py").write_text(TAGS)
    _git(repo, "init", "-q")
    _git(repo, "add", "pyproject.toml", "train.py")
    _git(repo, "commit", "-q", "-m", "mine")
    return repo, _git(repo, "rev-parse", "HEAD")


def _tags(repo: Path, pythonpath: Path, *args: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    out = subprocess.run(
        [sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(found["from"]).resolve().is_relative_to(pythonpath.resolve())
    return found["tags"]


@pytest.mark.slow
def test_an_installed_copy_in_a_users_repo_does_not_take_its_commit(tmp_path):
    repo, _ = _user_repo(tmp_path)
    tags = _tags(repo, repo / ".venv" / "lib" / "site-packages", "-c", TAGS)
    assert tags["cnnlab.version"] == cnnlab.__version__
    assert "cnnlab.git_commit" not in tags and "mlflow.source.git.commit" not in tags


@pytest.mark.slow
def test_a_users_script_is_tagged_with_the_users_commit_only(tmp_path):
    repo, head = _user_repo(tmp_path)
    tags = _tags(repo, repo / ".venv" / "lib" / "site-packages", str(repo / "train.py"))
    assert tags["mlflow.source.git.commit"] == head
    assert "cnnlab.git_commit" not in tags


@pytest.mark.slow
def test_a_src_folder_of_another_project_is_not_cnnlabs_checkout(tmp_path):
    repo, _ = _user_repo(tmp_path, project="mylab")
    tags = _tags(repo, repo / "src", "-c", TAGS)
    assert "cnnlab.git_commit" not in tags


def test_cnnlabs_own_checkout_tags_its_commit():
    top = PACKAGE.parents[1]
    head = _git(top, "rev-parse", "HEAD")
    tags = MlflowTracking("memory:").tracker(RunSpec("x", {}, {})).tags
    assert tags["cnnlab.git_commit"].removesuffix("-dirty") == head
    assert tags["cnnlab.version"] == cnnlab.__version__
