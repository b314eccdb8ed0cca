"""Runs in parallel: worker processes, each pinned to its share of the cores.

    with WorkerPool(jobs=2) as pool:
        for item, result in pool.run(train_one, [(cfg_a,), (cfg_b,)]):
            ...                           # in the order they finish

Processes, not threads: PyTorch's CPU ops already use every core they are given, and a second
run in the same process would share its thread pool and its random state. Each worker is
started once (spawn: no fork of a process that holds threads) and runs one item at a time;
it is pinned to its own cores (os.sched_setaffinity), so `train.threads = 0` means its share.

Interrupts: workers ignore SIGINT, which a terminal sends to the whole process group. When the
parent is interrupted (Ctrl-C, SIGTERM) it sends each busy worker exactly one SIGTERM, which
the worker raises as `Terminated` where it is, so its run closes KILLED as in one process; the
parent waits for them, then raises the interrupt. A failed item does not stop the others that
are running: no new item starts, and the first error is raised once those have ended.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

_STOP_WAIT_S = 120.0  # how long an interrupted worker may take to close its run
_events: Any = None  # in a worker: where emit() sends to the parent (a Connection, a queue)


def emit(message: Any) -> None:
    """From inside an item: hand `message` to the parent's on_event now (say, a trial that
    ended), rather than with the item's result. Outside a worker, nothing."""
    if _events is not None:
        _events.send(message)


def send_events_to(sink: Any) -> None:
    """Where emit() sends in this process: anything with a send(message) (a Ray task's queue);
    None: nowhere."""
    global _events
    _events = sink


def usable_cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: no pinning, every worker may use every core
        return list(range(os.cpu_count() or 1))


def default_jobs() -> int:
    """Runs at once when the user does not say: one per 4 cores. On 2 cores one run on both
    measured fastest (BENCHMARKS.md); a run of the study's models at batch 64 has a fixed cost
    per step that more threads do not shrink, so a 16-core machine is better used as 4 runs of
    4 cores than as one run of 16."""
    return max(1, len(usable_cores()) // 4)


def core_shares(jobs: int, cores: Sequence[int]) -> list[list[int]]:
    """`jobs` disjoint, nearly equal slices of `cores` (the first ones one larger); with more
    jobs than cores, one core each, taken in turn."""
    if jobs >= len(cores):
        return [[cores[i % len(cores)]] for i in range(jobs)]
    size, extra = divmod(len(cores), jobs)
    shares, at = [], 0
    for i in range(jobs):
        n = size + (i < extra)
        shares.append(list(cores[at : at + n]))
        at += n
    return shares


class WorkerPool:
    """`jobs` worker processes; use as a context manager so they are always stopped."""

    def __init__(self, jobs: int):
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self.jobs = jobs
        self._workers: list[_Worker] = []

    def __enter__(self) -> WorkerPool:
        context = multiprocessing.get_context("spawn")
        shares = core_shares(self.jobs, usable_cores())
        self._workers = [_Worker(context, share) for share in shares]
        return self

    def __exit__(self, *exc) -> None:
        for worker in self._workers:
            worker.close()

    def run(
        self,
        fn: Callable[..., Any],
        items: Sequence[tuple],
        on_event: Callable[[Any], None] | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """Yields (index into items, fn(*item)) as each item finishes; what an item emit()s
        goes to on_event as it comes. fn must be importable (a module-level function) and its
        arguments, result and messages picklable."""
        todo = list(enumerate(items))
        busy: dict[Connection, _Worker] = {}
        events = {w.events: w for w in self._workers}
        error: BaseException | None = None
        try:
            while todo or busy:
                for worker in self._workers:
                    if todo and error is None and worker.idle:
                        busy[worker.send(fn, *todo.pop(0))] = worker
                if not busy:
                    break
                for conn in wait([*busy, *events]):
                    if conn in events:
                        if not _event(conn, on_event):
                            del events[conn]  # its worker is gone
                        continue
                    for events_conn in list(events):  # what it emitted comes before its result
                        while events_conn.poll() and _event(events_conn, on_event):
                            pass
                    index, ok, value = busy.pop(conn).receive()
                    if ok:
                        yield index, value
                    elif error is None:
                        error = value
        except BaseException:  # an interrupt of the parent, or the consumer stopped early
            self._stop(busy.values())
            raise
        if error is not None:
            raise error

    def _stop(self, workers) -> None:
        for worker in workers:
            worker.terminate_item()
        for worker in workers:
            worker.drain(_STOP_WAIT_S)


def _event(conn: Connection, on_event) -> bool:
    """Hands one emitted message to on_event; False when the worker's end is closed."""
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return False
    if on_event is not None:
        on_event(message)
    return True


class _Worker:
    def __init__(self, context, cores: list[int]):
        self.conn, child = context.Pipe()
        self.events, child_events = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_serve, args=(child, child_events, cores), daemon=True
        )
        self.process.start()
        child.close()
        child_events.close()
        self.idle = True

    def send(self, fn, index: int, args: tuple) -> Connection:
        self.conn.send((fn, index, args))
        self.idle = False
        return self.conn

    def receive(self) -> tuple[int, bool, Any]:
        try:
            message = self.conn.recv()
        except EOFError:
            code = self.process.exitcode
            message = (-1, False, RuntimeError(f"a worker process died (exit code {code})"))
        self.idle = True
        return message

    def terminate_item(self) -> None:
        if self.process.is_alive():
            os.kill(self.process.pid, signal.SIGTERM)

    def drain(self, timeout: float) -> None:
        """Wait for the interrupted item's answer (its run closed), then for the exit."""
        if self.conn.poll(timeout):
            self.receive()
        self.process.join(timeout=5)

    def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError):  # BrokenPipeError: it is already gone
                self.conn.send(None)
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()
        self.events.close()


def _serve(conn: Connection, events: Connection, cores: list[int]) -> None:
    """A worker's loop: one item at a time until told to stop or the parent is gone."""
    global _events
    from cnnlab._signals import raise_terminated

    _events = events
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, and tells us by SIGTERM
    signal.signal(signal.SIGTERM, raise_terminated)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if message is None:
            return
        fn, index, args = message
        try:
            answer = (index, True, fn(*args))
        except KeyboardInterrupt as exc:  # Terminated: its run is closed KILLED by now
            conn.send((index, False, exc))
            return
        except BaseException as exc:
            answer = (index, False, _picklable(exc))
        conn.send(answer)


def _picklable(exc: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # any pickling failure: the worker's error still reaches the parent
        return RuntimeError(f"{type(exc).__name__}: {exc}")
