"""Fusion: the CPU path's one transform of a built model (the native kernel lives here alone).

from cnnlab.fusion import fuse

fused = fuse(model, torch.channels_last)  # what now runs fused, one line per block

The model families build plain PyTorch modules and know nothing of this package; the trainer
calls `fuse` once on the CPU path and records what it returned; given the run's input shape,
the native kernel runs only where it measures faster than PyTorch's ops (`kernel_pays`).
"""

from cnnlab.fusion._blocks import FusedBlock, fuse
from cnnlab.fusion._measure import ENV, kernel_pays

__all__ = ["ENV", "FusedBlock", "fuse", "kernel_pays"]
