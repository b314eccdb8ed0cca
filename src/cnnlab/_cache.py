"""The user cache shared by the dataset download and the built C kernels."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$CNNLAB_CACHE_DIR, else $XDG_CACHE_HOME/cnnlab, else ~/.cache/cnnlab."""
    root = os.environ.get("CNNLAB_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / "cnnlab") if xdg else str(Path.home() / ".cache" / "cnnlab")
    return Path(root).expanduser()
