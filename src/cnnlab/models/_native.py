"""C kernels shipped as source: compiled once per machine with the system's C compiler, then loaded.

    lib = load_library("_stem.c")   # a ctypes.CDLL, or None when no compiler could build it

The library lands in `<cache>/native/` under a name that hashes the source, the compiler, its
flags and the CPU's feature flags. It is built with -march=native, so a cache shared between
machines (an NFS home) never hands one CPU another CPU's instructions. The compiler writes a
private temporary file that is renamed into place: an interrupted or failed build leaves no
partial library for the next process, and workers building at once each rename a whole file.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from cnnlab._cache import cache_root
from cnnlab._cpu import cpu_flags

log = logging.getLogger(__name__)

CFLAGS = ("-O3", "-march=native", "-std=gnu11", "-fPIC", "-shared")
# OpenMP links the kernels to the runtime PyTorch's CPU wheel has loaded (same soname,
# libgomp.so.1), so they share its thread pool; a compiler without OpenMP builds them serial.
OPENMP = ("-fopenmp",)
BUILD_TIMEOUT_S = 120.0


def compiler() -> str | None:
    """$CC if set, else the first of cc, gcc and clang on PATH."""
    if os.environ.get("CC"):
        return os.environ["CC"]
    return next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)


def library_path(source: Path, cc: str) -> Path:
    """Where the build of `source` by `cc` for this CPU is cached."""
    try:
        version = subprocess.run(
            [cc, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    key = hashlib.sha256()
    flags = " ".join((*CFLAGS, *OPENMP)).encode()
    for part in (source.read_bytes(), cc.encode(), version.encode(), flags):
        key.update(part)
        key.update(b"\0")
    flags = cpu_flags()
    cpu = " ".join(sorted(flags)) if flags is not None else platform.processor()
    key.update(f"{platform.machine()} {cpu}".encode())
    return cache_root() / "native" / f"{source.stem}-{key.hexdigest()[:16]}.so"


def build(source: Path, target: Path, cc: str) -> None:
    """Compile `source` into `target` atomically; OSError or CalledProcessError on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        try:
            _compile(cc, [*CFLAGS, *OPENMP, str(source), "-o", tmp])
        except subprocess.CalledProcessError:
            _compile(cc, [*CFLAGS, str(source), "-o", tmp])  # the error, if any, is this one's
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _compile(cc: str, args: list[str]) -> None:
    subprocess.run([cc, *args], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=True)


# One build and one load per process: a loaded shared library cannot be unloaded anyway.
@functools.cache
def load_library(name: str) -> ctypes.CDLL | None:
    """The kernel `name` (a .c file beside this module), built if needed; None, with a warning
    naming the reason, when there is no compiler or the build fails."""
    source = Path(__file__).with_name(name)
    cc = compiler()
    if cc is None:
        log.warning(
            "cnnlab: no C compiler (cc, gcc, clang or $CC) to build %s; using PyTorch", name
        )
        return None
    target = library_path(source, cc)
    try:
        if not target.exists():
            build(source, target, cc)
        return ctypes.CDLL(str(target))
    except subprocess.CalledProcessError as e:
        first = (e.stderr or "").strip().splitlines()[:1]
        reason = first[0] if first else f"exit code {e.returncode}"
    except (OSError, subprocess.SubprocessError) as e:
        reason = str(e)
    log.warning("cnnlab: could not build %s with %s (%s); using PyTorch", name, cc, reason)
    return None
