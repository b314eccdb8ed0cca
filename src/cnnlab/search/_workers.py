"""Which process runs a trial, and whether it still lives: how a journal-file study (one
machine, no heartbeats) finds the trials of killed workers.

    trial.set_user_attr("cnnlab.worker", worker())
    dead(frozen_trial)   # True once that process is gone (or a zombie), on this host only
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

WORKER_ATTR = "cnnlab.worker"  # {"host", "pid", "start"} of the process that runs the trial
_NAMELESS = timedelta(seconds=60)  # a RUNNING trial that never named its worker is dead after


def worker() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_time(os.getpid())}


def dead(trial) -> bool:
    """A RUNNING trial whose worker process is gone (this host only), or that never named one."""
    owner = trial.user_attrs.get(WORKER_ATTR)
    if owner is None:
        started = trial.datetime_start
        return started is not None and datetime.now() - started > _NAMELESS
    if owner["host"] != socket.gethostname():
        return False  # another machine's process: heartbeats (RDB storages) tell, not this
    return _start_time(owner["pid"]) != owner["start"]


def _start_time(pid: int) -> str | None:
    """The process's start in clock ticks since boot (tells a reused pid apart); None when gone
    or a zombie. Without /proc (macOS), only whether the pid exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "alive"
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]
