"""Whether the native kernel pays on this machine, measured rather than assumed.

The kernel walks output channels 64 at a time, so a narrow first block (8 or 16 filters) does
most of its work on zero padding, and a CPU without wide vector units gains less from it. On an
AMD EPYC without AVX-512 (2 cores, fp32) 2-epoch runs took 4.4x (8 filters) and 1.8x (32) as
long with the kernel as on PyTorch's ops (benchmarks/fused_stem.py). So before a run fuses its
first block, it times that block both ways, under the run's autocast dtype, on random batches
of the run's input shape: one training step and one evaluation pass. The faster way is kept for
the block's layers, the input shape, the dtype and the thread count: in the process, and for
the machine in the user cache (`<cache>/native/verdicts/`, private as the built kernel is).
The two ways round differently, and where they are close in speed a measurement in each process
could pick either: kept per machine, every later run and worker process takes the way the
first measured, so a study gives the same figures with any number of jobs and on every rerun.
The first measurement holds a lock, so workers starting together wait for it and read it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from cnnlab._cache import NotPrivate, cache_root, open_private, private_folder
from cnnlab._cpu import cpu_flags

try:
    import fcntl
except ImportError:  # not POSIX: each process measures for itself
    fcntl = None

log = logging.getLogger(__name__)

PROBE_BATCH = 64  # images per timed training step: the default train.batch_size
EVAL_BATCH = 256  # images per timed evaluation pass
ROUNDS, WARMUP = 7, 2  # timed steps per path; the first WARMUP are dropped (allocations, caches)
# `always`: skip the measurement and run the kernel wherever it fits (tests of the kernel in
# whole runs, benchmarks of it); anything else measures.
ENV = "CNNLAB_FUSED_STEM"

_VERDICTS: dict[tuple, bool] = {}


def kernel_pays(
    layers: Sequence[nn.Module],
    make: Callable[[Sequence[nn.Module], bool], nn.Module],
    input_shape: Sequence[int],
    memory_format: torch.memory_format,
    autocast: torch.dtype | None,
) -> bool:
    """True when `make(layers, native=True)` trains faster than `make(layers, native=False)` on
    this machine. `layers` are the kernel's span of the block (no dropout, so no random draw
    from the run's generators); copies are timed, the model is left as it was."""
    if os.environ.get(ENV) == "always":
        return True
    key = (repr(list(layers)), tuple(input_shape), memory_format, autocast, torch.get_num_threads())
    if key not in _VERDICTS:

        def measure() -> bool:
            kernel = _step_seconds(
                make(copy.deepcopy(list(layers)), True), input_shape, memory_format, autocast
            )
            plain = _step_seconds(
                make(copy.deepcopy(list(layers)), False), input_shape, memory_format, autocast
            )
            return kernel < plain

        _VERDICTS[key] = _machine_verdict(key, measure)
    return _VERDICTS[key]


def _machine_verdict(key: tuple, measure: Callable[[], bool]) -> bool:
    """The verdict this machine keeps for `key`, measured (under the lock) the first time; just
    measured when the cache cannot be used (no flock, a folder that is not private)."""
    folder = cache_root() / "native" / "verdicts"
    try:
        private_folder(folder.parent)
        private_folder(folder)
    except (NotPrivate, OSError) as e:
        log.info("cnnlab: not keeping the kernel's verdict for the machine (%s)", e)
        return measure()
    if fcntl is None:
        return measure()
    path = folder / _verdict_name(key)
    try:
        with open(folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # closing the file releases it
            return _kept_or_measured(path, measure)
    except OSError as e:  # no lock file, or a file system without locks
        log.info("cnnlab: measuring the kernel without the machine's verdicts (%s)", e)
        return measure()


def _kept_or_measured(path: Path, measure: Callable[[], bool]) -> bool:
    """Under the lock: the verdict kept at `path`, else a new measurement, kept there."""
    kept = _read_verdict(path)
    if kept is not None:
        return kept
    verdict = measure()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        tmp.write_text("1" if verdict else "0")
        os.replace(tmp, path)
    except OSError as e:  # kept for this process only: the run goes on
        log.info("cnnlab: could not keep the kernel's verdict in %s (%s)", path, e)
        tmp.unlink(missing_ok=True)
    return verdict


def _verdict_name(key: tuple) -> str:
    """The key with what else decides the timing: the CPU, PyTorch's version (its ops are the
    other side) and the kernel's source."""
    flags = cpu_flags()
    cpu = " ".join(sorted(flags)) if flags is not None else platform.processor()
    text = repr((key, platform.machine(), cpu, torch.__version__, _kernel_source_hash()))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@functools.cache
def _kernel_source_hash() -> str:
    return hashlib.sha256(Path(__file__).with_name("_stem.c").read_bytes()).hexdigest()


def _read_verdict(path: Path) -> bool | None:
    """The kept verdict; None when there is none or the file is not a private one of ours."""
    try:
        fd = open_private(path)
    except (OSError, NotPrivate):
        return None
    with os.fdopen(fd, "r") as file:
        text = file.read(2).strip()
    return {"1": True, "0": False}.get(text)


def _step_seconds(block: nn.Module, input_shape, memory_format, autocast) -> float:
    """Median seconds of one training step (forward and backward, PROBE_BATCH images) and one
    evaluation pass (EVAL_BATCH images, no gradient) of `block` on fixed random batches: a run
    does both, and the kernel's margin differs between them."""
    generator = torch.Generator().manual_seed(0)  # the run's own random state is not touched
    x = torch.rand(EVAL_BATCH, *input_shape, generator=generator)
    x = x.contiguous(memory_format=memory_format)
    block.train()
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=autocast) if autocast else contextlib.nullcontext():
            out = block(x[:PROBE_BATCH])
            out.float().sum().backward()
            with torch.no_grad():
                block(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times[WARMUP:])
