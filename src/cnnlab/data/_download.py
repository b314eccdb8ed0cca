"""Fetch a dataset's missing files from a mirror into the user cache, all or nothing per file.

Each file streams into a private `.part` file next to its final name, is verified in full, and
only then renamed into place; any failure deletes the `.part`. A file in the cache under its
final name has therefore passed every check once.
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from cnnlab._cache import cache_root
from cnnlab.data._idx import DataError

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0  # per blocking socket operation, not per file
_CHUNK = 1 << 20  # bytes per read while streaming


# verify(bytes, file name, url): raises DataError unless the bytes are the file they should be.
Verify = Callable[[bytes, str, str], object]


def cache_dir(dataset: str) -> Path:
    """`<cache>/<dataset>`; <cache> is $CNNLAB_CACHE_DIR, $XDG_CACHE_HOME/cnnlab or ~/.cache."""
    return cache_root() / dataset


def mirror_url(env: str, default: str) -> str:
    return os.environ.get(env) or default


def download(names: list[str], target: Path, mirror: str, verify: Verify) -> None:
    """Fetch each file into `target`; the first failure raises DataError, leaving no part behind."""
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"{target}: cache dir: expected a writable directory, got {exc.strerror} ({target})"
        ) from None
    for name in names:
        _fetch(name, target, mirror.rstrip("/") + "/" + name, verify)


def _fetch(name: str, target: Path, url: str, verify: Verify) -> None:
    log.info("downloading %s", url)
    # A unique part name: two processes filling the same cache cannot write into one file.
    fd, part_name = tempfile.mkstemp(prefix=f"{name}.", suffix=".part", dir=target)
    part = Path(part_name)
    done = False
    try:
        with os.fdopen(fd, "wb") as out:
            _stream(url, out, name)
        verify(part.read_bytes(), name, url)
        os.replace(part, target / name)
        done = True
    finally:
        if not done:
            part.unlink(missing_ok=True)


def _stream(url: str, out: BinaryIO, name: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            shutil.copyfileobj(response, out, _CHUNK)
    except urllib.error.HTTPError as exc:
        raise DataError(
            f"{name}: download: expected HTTP 200, got HTTP {exc.code} {exc.reason} ({url})"
        ) from None
    except urllib.error.URLError as exc:
        raise DataError(
            f"{name}: download: expected a response, got {exc.reason} ({url})"
        ) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # Timeouts, resets and short reads mid-body; ValueError is a malformed mirror URL.
        text = " ".join(str(exc).split()) or "no detail"
        detail = f"{type(exc).__name__}: {text}"
        raise DataError(
            f"{name}: download: expected the whole file, got {detail} ({url})"
        ) from None
