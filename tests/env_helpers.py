"""The machine's pieces some tests need, each installed by scripts/test.sh (via scripts/setup.sh
for the data and the compiler). A test that lacks one fails, naming it and how to get it; none
skips or passes without it.

    cc = require("cc")             # the path of the C compiler, or the test fails
"""

from __future__ import annotations

import glob
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Piece:
    what: str  # named in the failure
    package: str  # the Debian package(s) scripts/test.sh installs it from
    find: Callable[[], str | None]  # the path found, or None


def _fashion_mnist() -> str | None:
    folder = Path("/usr/share/datasets/fashion-mnist")
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    names += ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return str(folder) if all((folder / f"{n}.gz").is_file() for n in names) else None


def _postgresql() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return str(Path(found[-1]).parent) if found else None


def _chromium() -> str | None:
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def _compiler() -> str | None:
    return next(filter(None, map(shutil.which, ("cc", "gcc", "clang"))), None)


PIECES = {
    "fashion-mnist": Piece(
        "Fashion-MNIST in /usr/share/datasets/fashion-mnist",
        "dataset-fashion-mnist",
        _fashion_mnist,
    ),
    "postgresql": Piece("PostgreSQL (initdb, pg_ctl)", "postgresql", _postgresql),
    "chromium": Piece("Chromium at /usr/bin/chromium", "chromium", _chromium),
    "cc": Piece("a C compiler (cc, gcc or clang)", "gcc libc6-dev", _compiler),
}


def missing(name: str) -> str:
    """What a test without piece `name` says."""
    piece = PIECES[name]
    return f"needs {piece.what}: scripts/test.sh installs it with apt-get install {piece.package}"


def require(name: str) -> str:
    """The path of piece `name` (a folder or a program); without it the test fails, saying so."""
    found = PIECES[name].find()
    if found is None:
        pytest.fail(missing(name), pytrace=False)
    return found


def stop_group(proc, grace: float = 3.0) -> None:
    """Stops a server started with start_new_session (it and its worker): SIGTERM, then SIGKILL
    after `grace` seconds, as uvicorn may wait longer than that for its clients' connections."""
    import os
    import signal
    import subprocess

    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
