"""Interrupts that wait for a store write to finish.

The CLI turns SIGTERM and Ctrl-C into exceptions raised wherever the process is. Raised inside
SQLAlchemy in the middle of a commit, such an exception can leave the SQLite connection holding
its write lock, and closing the run as KILLED then waits on that lock. Tracking calls therefore
run `shielded()`: a signal that arrives during one is noted and raised as the block ends, a
few milliseconds later.

    with shielded():
        client.log_batch(run_id, metrics)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is so that runs close as KILLED, like Ctrl-C."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C. A subclass, because CPython exits by SIGINT (not with our exit code) when a bare
    KeyboardInterrupt once escaped code it ran through its C API, even if we caught it later."""


_depth = 0  # nesting of shielded blocks; handlers only ever run in the main thread
_pending: BaseException | None = None


def deliver(make: Callable[[], BaseException]) -> None:
    """Raise make() now, or, inside a shielded block, when the block ends."""
    global _pending
    if not _depth:
        raise make()
    if _pending is None:
        _pending = make()


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _pending is not None:
            exc, _pending = _pending, None
            raise exc


def raise_terminated(signum, frame) -> None:
    """A SIGTERM handler: Terminated at once, or as soon as a tracking write is done."""
    deliver(Terminated)


def raise_interrupted(signum, frame) -> None:
    """A SIGINT handler (the CLI's, and a Ray task's, which ray.cancel interrupts through it)."""
    deliver(Interrupted)
