"""The user cache shared by the dataset download, the built C kernels and the empty store.

Some of what lands here is later loaded as trusted: a C library, a database copied into every
new store. Such files live in a folder only this user can write (`private_folder`), and each is
checked before use (`untrusted`), so no other user of the machine can plant one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)


class NotPrivate(Exception):
    """A cache folder that someone else could write in: its files must not be trusted."""


def cache_root() -> Path:
    """$CNNLAB_CACHE_DIR, else $XDG_CACHE_HOME/cnnlab, else ~/.cache/cnnlab."""
    root = os.environ.get("CNNLAB_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / "cnnlab") if xdg else str(Path.home() / ".cache" / "cnnlab")
    return Path(root).expanduser()


def private_folder(folder: Path) -> None:
    """Make `folder` if missing and make sure only we can write it; NotPrivate (saying why) when
    it is a symlink, not a directory, or someone else's."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)  # as umask allows; tightened below
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        why = "is a symlink" if stat.S_ISLNK(st.st_mode) else "is not a directory"
        raise NotPrivate(f"{folder} {why}")
    if st.st_uid != os.geteuid():
        raise NotPrivate(f"{folder} is owned by uid {st.st_uid}, not you")
    if stat.S_IMODE(st.st_mode) != 0o700:
        # Ours, so ours to fix. Files others could write in until now are still each checked
        # before use, as every file is.
        log.info("cnnlab: making %s private (mode %o -> 700)", folder, stat.S_IMODE(st.st_mode))
        os.chmod(folder, 0o700)


def untrusted(st: os.stat_result) -> str | None:
    """Why a cached file with this status must not be used; None when it may."""
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "writable by others"
    return None


def open_private(path: Path) -> int:
    """A read-only descriptor on `path` when it is a regular file of ours that no one else can
    write; NotPrivate (saying why) when it is not, OSError when it cannot be opened. The check
    is made on the open descriptor, so the file read is the file checked."""
    # NOFOLLOW: a symlink fails instead of opening its target; NONBLOCK: a FIFO cannot hang it.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    why = untrusted(os.fstat(fd))
    if why:
        os.close(fd)
        raise NotPrivate(f"{path}: {why}")
    return fd
