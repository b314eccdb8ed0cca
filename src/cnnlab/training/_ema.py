"""Weight averaging: an exponential moving average (EMA) of the weights, kept beside the model.

ema = WeightAverage(model, decay=0.999)
...optimizer.step(); ema.update()
evaluate(ema.model, ...)   # the average is what gets validated and tested
ema.copy_to(model)         # at the end, the model carries the averaged weights

The average of the last few hundred steps sits nearer the middle of the loss valley than the
last step's weights, which a high learning rate keeps bouncing around it; it costs one fused
multiply-add over the parameters per step.
"""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """EMA of a model's floating-point parameters; buffers (BatchNorm statistics) are copied."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"decay: expected in (0, 1), got {decay!r}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        self.model.requires_grad_(False)
        # Fixed here: the optimizer updates the model's tensors in place, so these lists stay
        # valid and the per-step update builds nothing.
        pairs = [
            (a, p.detach())
            for a, p in zip(self.model.parameters(), model.parameters(), strict=True)
            if p.is_floating_point()
        ]
        self._averaged = [a for a, _ in pairs]
        self._live = [p for _, p in pairs]
        self._buffers_mine = list(self.model.buffers())
        self._buffers_theirs = list(model.buffers())

    def current_decay(self) -> float:
        # Early on the average would be dominated by the random initial weights, so the decay
        # ramps up (1+t)/(10+t) towards its setting, as TensorFlow's and timm's EMA do.
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """Moves the average towards the model it was made from."""
        torch._foreach_lerp_(self._averaged, self._live, 1 - self.current_decay())
        if self._buffers_mine:
            torch._foreach_copy_(self._buffers_mine, self._buffers_theirs)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"weights": self.model.state_dict(), "updates": self.updates}

    @torch.no_grad()
    def load_state_dict(self, saved: dict) -> None:
        """Copies in place: the per-step update keeps pointing at the same tensors."""
        self.model.load_state_dict(saved["weights"])
        self.updates = int(saved["updates"])

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        """Puts the averaged weights into `model` (which keeps its own layout and device)."""
        model.load_state_dict(self.model.state_dict())
