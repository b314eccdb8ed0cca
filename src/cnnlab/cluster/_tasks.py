"""Items run as Ray tasks, wherever the cluster has room: the same `run` as cnnlab's
WorkerPool, so a study or a search uses either without knowing which.

    pool = RayPool(cluster, resources=lambda item: {"num_cpus": 1, "num_gpus": 0})
    for index, result in pool.run(train_one, items, on_event=print):
        ...                                   # in the order they finish

Each item asks for the CPUs and GPUs that `resources` gives it. A task whose worker or node
is lost is run again by Ray on a node that is still there (up to RETRIES times); the item's
function decides what a second attempt does with the first one's work (a study's run resumes
from its checkpoint). What an item emit()s reaches on_event through a queue actor, as it comes.

Errors: an item's exception (a DataError on a node without the data) comes back as itself
and is raised once the other running items have ended. An interrupt of the driver (Ctrl-C,
SIGTERM) cancels every task, which raises KeyboardInterrupt inside it (through cnnlab's
handler, so a tracking write in progress ends first), so each open run ends KILLED as in one
process; the driver waits for them, then raises the interrupt.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from cnnlab._signals import raise_interrupted
from cnnlab.cluster._connect import Cluster, import_ray

RETRIES = 3  # attempts after the first for a task whose worker process or node died
_STOP_WAIT_S = 120.0  # how long cancelled tasks may take to close their runs
_POLL_S = 0.5  # how often the driver looks at the event queue while tasks run


class RayPool:
    def __init__(self, cluster: Cluster, resources: Callable[[tuple], dict[str, float]]):
        self.cluster, self.resources = cluster, resources
        self.remote = True  # runs elsewhere: an item's second attempt may find the first's work

    def run(
        self,
        fn: Callable[..., Any],
        items: Sequence[tuple],
        on_event: Callable[[Any], None] | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """Yields (index into items, fn(*item)) as each task finishes. fn must be importable
        on every node (cnnlab installed there) and its arguments and result picklable."""
        ray = import_ray()
        from ray.util.queue import Queue

        events = Queue() if on_event is not None else None
        task = ray.remote(max_retries=RETRIES, retry_exceptions=False)(_call)
        pending = {
            task.options(**self.resources(item)).remote(fn, item, events): index
            for index, item in enumerate(items)
        }
        error: BaseException | None = None
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
                _drain(events, on_event)
                for ref in done:
                    index = pending.pop(ref)
                    ok, value = ray.get(ref)  # a task lost RETRIES + 1 times raises here
                    if ok:
                        yield index, value
                    elif error is None:
                        error = pickle.loads(value)
            _drain(events, on_event)
        except BaseException:  # an interrupt of the driver, or the consumer stopped early
            _cancel(ray, list(pending))
            raise
        finally:
            if events is not None:
                events.shutdown()
        if error is not None:
            raise error


def _call(fn: Callable[..., Any], item: tuple, events) -> tuple[bool, Any]:
    """Inside the task: fn(*item), with emit() sending to the driver's queue. An exception is
    returned pickled (or as a RuntimeError naming it), so the driver raises the item's own."""
    import os
    import signal

    import ray

    from cnnlab._pool import send_events_to

    send_events_to(_QueueSink(events) if events is not None else None)
    # A run's `train.threads = 0` means the CPUs this task was given (cnnlab.training).
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    os.environ["OMP_NUM_THREADS"] = str(max(1, int(cpus)))
    # ray.cancel raises KeyboardInterrupt through the task's SIGINT handler. Raised in the
    # middle of a store commit it could leave SQLite locked, and the run could not close
    # KILLED; delivered by cnnlab's handler, it waits for a tracking write to finish.
    previous = signal.signal(signal.SIGINT, raise_interrupted)
    try:
        return True, fn(*item)
    except KeyboardInterrupt:  # cancelled: fn closed its run KILLED on the way out
        raise
    except Exception as exc:
        try:
            return False, pickle.dumps(exc)
        except Exception:  # any pickling failure: the error still reaches the driver
            return False, pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
    finally:
        signal.signal(signal.SIGINT, previous)


class _QueueSink:
    """emit()'s end inside a task: what pool.emit sends goes on the driver's queue."""

    def __init__(self, queue):
        self.queue = queue

    def send(self, message: Any) -> None:
        self.queue.put(message)


def _drain(events, on_event) -> None:
    if events is None:
        return
    while not events.empty():
        on_event(events.get())


def _cancel(ray, refs: list) -> None:
    """Cancel every task (KeyboardInterrupt inside), then wait for them to close their runs."""
    for ref in refs:
        ray.cancel(ref, recursive=True)
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=_STOP_WAIT_S)
