"""Whether the native kernel pays on this machine, measured rather than assumed.

The kernel walks output channels 64 at a time, so a narrow first block (8 or 16 filters) does
most of its work on zero padding, and a CPU without wide vector units gains less from it. On an
AMD EPYC without AVX-512 (2 cores, fp32) 2-epoch runs took 4.4x (8 filters) and 1.8x (32) as
long with the kernel as on PyTorch's ops (benchmarks/fused_stem.py). So before a run fuses its
first block, it times that block both ways, under the run's autocast dtype, on random batches
of the run's input shape: one training step and one evaluation pass. The faster way is kept, per
process, for the block's layers, the input shape, the dtype and the thread count.
"""

from __future__ import annotations

import contextlib
import copy
import os
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

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
        kernel = _step_seconds(
            make(copy.deepcopy(list(layers)), True), input_shape, memory_format, autocast
        )
        plain = _step_seconds(
            make(copy.deepcopy(list(layers)), False), input_shape, memory_format, autocast
        )
        _VERDICTS[key] = kernel < plain
    return _VERDICTS[key]


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
