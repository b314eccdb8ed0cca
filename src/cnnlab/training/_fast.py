"""The fast path's pieces: precision by hardware, memory layout, threads, augmentation on batches.

runtime = Runtime.from_config(cfg.train, device, model)
with runtime.autocast():
    logits = model(runtime.layout(x))

Everything here works on whole batches already on the training device; nothing reads a tensor
back to the host, so a step on CUDA never waits for the GPU.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab._cpu import cpu_flags
from cnnlab.config import TrainConfig
from cnnlab.fusion import FusedBlock, fuse

# /proc/cpuinfo flags that mean bf16 matmuls and convolutions run natively, not emulated in fp32.
_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True on CPUs with AVX512-BF16 or AMX; elsewhere bf16 autocast is slower than fp32."""
    flags = cpu_flags(cpuinfo)
    if flags is None:
        return torch.backends.cpu.get_cpu_capability().startswith("AMX")
    return bool(_BF16_FLAGS & flags)


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`; None means plain fp32."""
    if name == "fp32":
        return None
    if name == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity, or fewer where OMP_NUM_THREADS says
    so (a Ray task is given its CPUs that way, not by pinning)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return min(cores, int(limit)) if limit.isdigit() and int(limit) > 0 else cores


def set_threads(threads: int) -> None:
    """One intra-op thread per core (0 = all this process may use); more only contend."""
    torch.set_num_threads(threads or usable_cores())


def has_conv(model: torch.nn.Module) -> bool:
    return any(p.dim() == 4 for p in model.parameters())


@dataclass(frozen=True)
class ComputePath:
    """Which path a run's steps took: the one record that results, tags and reports read."""

    device: str  # "cpu", "cuda", ...
    precision: str  # the autocast dtype: "bf16", or "fp32" for none
    channels_last: bool
    fused: tuple[str, ...] = ()  # blocks that ran fused (cnnlab.fusion), one line each

    def describe(self) -> str:
        """One line, e.g. "cpu, bf16, channels_last; fused: features.0: conv, max-pool, ..."."""
        layout = "channels_last" if self.channels_last else "NCHW"
        text = f"{self.device}, {self.precision}, {layout}"
        return f"{text}; fused: {'; '.join(self.fused)}" if self.fused else text


@dataclass
class Runtime:
    """How batches meet the model: autocast dtype, memory layout, test-time flips."""

    device: torch.device
    dtype: torch.dtype | None = None  # autocast dtype; None = fp32
    channels_last: bool = False
    tta_flip: bool = False
    fused_stem: bool = False  # a first conv block as one native CPU kernel (models._stem)
    # What prepare() fused, one line per block (cnnlab.fusion.fuse); () until then, or when
    # nothing fits or no compiler is found
    fused: tuple[str, ...] = ()
    # Whether prepare() put the native kernel in: a checkpoint records it, because the kernel
    # and PyTorch's ops round differently and a new measurement could choose the other.
    native_kernel: bool = False

    @classmethod
    def from_config(cls, cfg: TrainConfig, device: torch.device, model: torch.nn.Module):
        return cls(
            device=device,
            dtype=resolve_precision(cfg.precision, device),
            channels_last=cfg.channels_last and has_conv(model),
            tta_flip=cfg.tta_flip,
            # torch.compile would split its graph around the kernel: compile keeps PyTorch's ops.
            fused_stem=cfg.fused_stem and device.type == "cpu" and not cfg.compile,
        )

    @classmethod
    def matching(cls, model: torch.nn.Module, device: torch.device) -> Runtime:
        """fp32, with batches in the layout the model's conv weights already have."""
        # A 1-channel 3x3 kernel is contiguous in both layouts; only a wider one tells them apart.
        nhwc = any(
            p.dim() == 4
            and not p.is_contiguous()
            and p.is_contiguous(memory_format=torch.channels_last)
            for p in model.parameters()
        )
        return cls(device=device, channels_last=nhwc)

    def prepare(
        self,
        model: torch.nn.Module,
        input_shape: Sequence[int] | None = None,
        native: bool | None = None,
    ) -> torch.nn.Module:
        """Puts the model in this runtime's layout and fuses its first block where that pays:
        given the run's `input_shape`, the native kernel only where it measures faster than
        PyTorch's ops here (cnnlab.fusion); `native` (a resumed run's way) instead of that."""
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        if self.channels_last:
            model.to(memory_format=layout)
        probe = (input_shape, self.dtype) if input_shape is not None else None
        self.fused = fuse(model, layout if self.fused_stem else None, probe, native)
        self.native_kernel = any(isinstance(m, FusedBlock) and m.native for m in model.modules())
        return model

    @property
    def path(self) -> ComputePath:
        precision = "bf16" if self.dtype == torch.bfloat16 else "fp32"
        return ComputePath(self.device.type, precision, self.channels_last, self.fused)

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def logits(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """fp32 logits for evaluation; with tta_flip, averaged with the mirrored images'."""
        x = self.layout(x)
        with self.autocast():
            out = model(x).float()
            if self.tta_flip:
                out = (out + model(x.flip(-1)).float()) / 2
        return out


class Augment:
    """Random crop (zero padding), horizontal flip and erasing, for a whole batch at once.

    Crop and flip are one gather on the uint8 images; erasing blanks a rectangle of the normalised
    batch to 0, the training mean. The random draws come from their own CPU generator, so a run
    is the same on every device and the shuffling does not change when augmentation is switched.
    """

    def __init__(self, cfg: TrainConfig, generator: torch.Generator):
        self.flip = cfg.flip
        self.pad = cfg.crop_padding
        self.erase_p = cfg.erase
        self.generator = generator

    @property
    def active(self) -> bool:
        return self.flip or self.pad > 0 or self.erase_p > 0

    def _rand(self, *shape: int, high: int, device: torch.device) -> torch.Tensor:
        draw = torch.randint(high, shape, generator=self.generator)
        return draw.to(device, non_blocking=True)

    def crop_flip(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, C, H, W] -> the same shape and dtype, each image shifted and/or mirrored."""
        if not (self.flip or self.pad):
            return images
        b, _, h, w = images.shape
        dev = images.device
        rows = torch.arange(h, device=dev).expand(b, h)
        cols = torch.arange(w, device=dev).expand(b, w)
        if self.flip:
            mirrored = self._rand(b, 1, high=2, device=dev).bool()
            cols = torch.where(mirrored, (w - 1) - cols, cols)
        if self.pad:
            p = self.pad
            images = torch.nn.functional.pad(images, (p, p, p, p))
            rows = rows + self._rand(b, 1, high=2 * p + 1, device=dev)
            cols = cols + self._rand(b, 1, high=2 * p + 1, device=dev)
        nhwc = images.permute(0, 2, 3, 1)
        batch = torch.arange(b, device=dev)[:, None, None]
        return nhwc[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)

    def erase(self, x: torch.Tensor) -> torch.Tensor:
        """Blank one rectangle (a tenth to half of each side) per chosen image of a float batch."""
        if not self.erase_p:
            return x
        b, _, h, w = x.shape
        dev = x.device
        chosen = torch.rand(b, generator=self.generator).to(dev, non_blocking=True) < self.erase_p
        eh = self._rand(b, 1, high=h // 2 - h // 10 + 1, device=dev) + h // 10
        ew = self._rand(b, 1, high=w // 2 - w // 10 + 1, device=dev) + w // 10
        top = (
            torch.rand(b, 1, generator=self.generator).to(dev, non_blocking=True) * (h - eh + 1)
        ).long()
        left = (
            torch.rand(b, 1, generator=self.generator).to(dev, non_blocking=True) * (w - ew + 1)
        ).long()
        r = torch.arange(h, device=dev)[None, :]
        c = torch.arange(w, device=dev)[None, :]
        in_rows = (r >= top) & (r < top + eh)
        in_cols = (c >= left) & (c < left + ew)
        mask = in_rows[:, :, None] & in_cols[:, None, :] & chosen[:, None, None]
        return x.masked_fill(mask[:, None], 0.0)
