"""C kernels shipped as source: compiled once per machine with the system's C compiler, then loaded.

    lib = load_library("_stem.c")   # a ctypes.CDLL, or None when no compiler could build it

The library lands in `<cache>/native/` under a name that hashes the source, the compiler, its
flags and the CPU's feature flags. It is built with -march=native, so a cache shared between
machines (an NFS home) never hands one CPU another CPU's instructions. The compiler writes a
private temporary file that is renamed into place: an interrupted or failed build leaves no
partial library for the next process, and workers building at once each rename a whole file.

The name is predictable, so whoever could write there could have their code run in this
process. Nothing is built or loaded unless `native/` is a real directory owned by this user;
it is made (or tightened to) mode 0700, so no one else can add or swap files in it. A library
is loaded only if it is a regular file (not a symlink) owned by this user and writable by no
one else, checked on the open descriptor it is then loaded through; any other file there, or
one that will not load, is replaced by a fresh private build. Any failure falls back to
PyTorch's ops with one warning.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from cnnlab._cache import NotPrivate, cache_root, private_folder
from cnnlab._cache import untrusted as _untrusted  # a module global: tests swap it
from cnnlab._cpu import cpu_flags

log = logging.getLogger(__name__)

CFLAGS = ("-O3", "-march=native", "-std=gnu11", "-fPIC", "-shared")
# OpenMP links the kernels to the runtime PyTorch's CPU wheel has loaded (same soname,
# libgomp.so.1), so they share its thread pool; a compiler without OpenMP builds them serial.
OPENMP = ("-fopenmp",)
BUILD_TIMEOUT_S = 120.0
_FD_DIR = Path("/proc/self/fd")  # Linux: a path that opens an already open descriptor's file


class _Fallback(Exception):
    """Why PyTorch's ops are used instead: the one warning load_library logs."""


def compiler() -> str | None:
    """$CC if set (a command line: "ccache gcc" works), else the first of cc, gcc and clang on
    PATH."""
    if os.environ.get("CC"):
        return os.environ["CC"]
    return next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)


def _missing(cc: str | None) -> str | None:
    """Why `cc` cannot be run, in a few words; None when it can."""
    if cc is None:
        return "cc, gcc, clang or $CC"
    try:
        argv = shlex.split(cc)
    except ValueError as e:
        return f"$CC={cc!r} is malformed: {e}"
    if not argv or shutil.which(argv[0]) is None:
        return f"$CC={cc!r} is not found"
    return None


def library_path(source: Path, cc: str) -> Path:
    """Where the build of `source` by `cc` for this CPU is cached."""
    try:
        version = subprocess.run(
            [*shlex.split(cc), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
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
    """Compile `source` into `target` (in an existing folder) atomically, replacing whatever is
    there; OSError or CalledProcessError on failure."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        try:
            _compile(cc, [*CFLAGS, *OPENMP, str(source), "-o", tmp])
        except subprocess.CalledProcessError:
            _compile(cc, [*CFLAGS, str(source), "-o", tmp])  # the error, if any, is this one's
        # The linker recreates its output with 0777 & ~umask: a umask of 002 would leave the
        # library group-writable, which the loader then refuses.
        os.chmod(tmp, 0o700)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _compile(cc: str, args: list[str]) -> None:
    subprocess.run(
        [*shlex.split(cc), *args],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=True,
    )


def _load_private(path: Path) -> ctypes.CDLL | None:
    """`path` loaded if it is a regular file of ours that only we can write; None when it is
    missing or is not such a file. OSError when a file that passes will not load."""
    try:
        # NOFOLLOW: a symlink fails (ELOOP) instead of opening its target; NONBLOCK: a FIFO
        # planted while the folder was open to others cannot hang the open.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        log.info("cnnlab: rebuilding %s (%s)", path, e.strerror)
        return None
    loaded = False
    try:
        st = os.fstat(fd)
        why = _untrusted(st)
        if why:
            log.info("cnnlab: rebuilding %s (%s)", path, why)
            return None
        lib = ctypes.CDLL(_loadable_name(fd, path, st))
        loaded = True
        return lib
    except OSError as e:
        raise OSError(f"cannot load {path}: {e}") from e
    finally:
        # After a load through /proc/self/fd/N the descriptor stays open for good: glibc knows
        # a library by the name it was opened with, and a later dlopen of a reused N would hand
        # back this library instead of opening the new file. (It cannot be unloaded anyway.)
        if not (loaded and _FD_DIR.is_dir()):
            os.close(fd)


def _loadable_name(fd: int, path: Path, checked: os.stat_result) -> str:
    """A name for dlopen that reaches the file checked through `fd`."""
    if _FD_DIR.is_dir():
        return str(_FD_DIR / str(fd))  # the very file fstat saw: no swap can slip in between
    # No /proc (macOS, BSD): check the path again right before loading. A swap between this
    # and dlopen would need write access to the folder, which is ours alone (0700).
    st = os.lstat(path)
    if (st.st_dev, st.st_ino) != (checked.st_dev, checked.st_ino):
        raise OSError(f"{path} changed while being loaded")
    return str(path)


def _load(source: Path) -> ctypes.CDLL:
    """The private build of `source`, made if missing or untrusted; _Fallback says why not."""
    cc = compiler()
    missing = _missing(cc)
    if missing or cc is None:
        raise _Fallback(f"no C compiler ({missing}) to build {source.name}")
    target = library_path(source, cc)
    try:
        private_folder(target.parent)
    except NotPrivate as e:
        raise _Fallback(f"{e}; not loading native code from it") from None
    try:
        try:
            lib = _load_private(target)
        except OSError as e:  # ours and private, yet will not load (say, truncated): rebuild once
            log.info("cnnlab: rebuilding %s", e)
            lib = None
        if lib is None:
            build(source, target, cc)
            lib = _load_private(target)
        if lib is None:
            raise OSError(f"{target} is not a private regular file after the build")
        return lib
    except subprocess.CalledProcessError as e:
        first = (e.stderr or "").strip().splitlines()[:1]
        reason = first[0] if first else f"exit code {e.returncode}"
        raise _Fallback(f"could not build {source.name} with {cc} ({reason})") from e
    except (OSError, subprocess.SubprocessError) as e:
        raise _Fallback(f"could not build {source.name} with {cc} ({e})") from e


# One build and one load per process: a loaded shared library cannot be unloaded anyway.
@functools.cache
def load_library(name: str) -> ctypes.CDLL | None:
    """The kernel `name` (a .c file beside this module), built if needed; None, with a warning
    naming the reason, when there is no compiler, the cache folder is not ours, or the build or
    the load fails. Never raises: the native path must not fail a run."""
    try:
        return _load(Path(__file__).with_name(name))
    except _Fallback as e:
        reason = str(e)
    except Exception as e:  # anything unforeseen: PyTorch's ops still work
        reason = f"could not build {name} ({type(e).__name__}: {e})"
    log.warning("cnnlab: %s; using PyTorch", reason)
    return None
