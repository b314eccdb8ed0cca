"""Batches drawn by index from tensors already in memory (no Dataset, no DataLoader).

Images stay uint8 until a batch is taken; it is then turned into normalised floats on the
training device, so a whole epoch costs one gather and one cast per step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class BatchStream:
    """An endless stream of shuffled index batches over n items, reshuffled when used up.

    An "epoch" of N steps (the course's 100 x 64) simply takes N batches and the next epoch
    continues where it stopped, so every image is seen before any is seen twice.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device):
        self.n = n
        self.batch_size = min(batch_size, n)
        self.generator = generator
        self.device = device
        self._perm = torch.empty(0, dtype=torch.long)
        self._pos = 0

    @property
    def steps_per_pass(self) -> int:
        return self.n // self.batch_size

    def next(self) -> torch.Tensor:
        if self._pos + self.batch_size > len(self._perm):
            # The permutation is drawn on the CPU generator so runs match across devices.
            self._perm = torch.randperm(self.n, generator=self.generator).to(self.device)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx

    def state_dict(self) -> dict:
        """Where the stream is: its generator, the permutation in use and the place in it."""
        return {"generator": self.generator.get_state(), "perm": self._perm.cpu(), "pos": self._pos}

    def load_state_dict(self, saved: dict) -> None:
        self.generator.set_state(saved["generator"])
        self._perm = saved["perm"].to(self.device)
        self._pos = int(saved["pos"])


class Normalize:
    """uint8 images -> float32 (x / 255 - mean) / std per channel, fused into one multiply-add."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        if len(mean) == 1:  # one channel: plain numbers, the cheapest multiply-add
            self.scale, self.shift = 1.0 / (255.0 * std[0]), -mean[0] / std[0]
        else:
            self.scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(1, -1, 1, 1)
            self.shift = torch.tensor([-m / s for m, s in zip(mean, std)]).view(1, -1, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if isinstance(self.scale, torch.Tensor) and self.scale.device != x.device:
            self.scale, self.shift = self.scale.to(x.device), self.shift.to(x.device)
        return x.mul_(self.scale).add_(self.shift)


def eval_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int):
    """Consecutive (images, labels) slices for evaluation, in order."""
    for start in range(0, len(images), batch_size):
        yield images[start : start + batch_size], labels[start : start + batch_size]
