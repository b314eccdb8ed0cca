"""API calls leave a notebook's random numbers as they found them."""

import random

import numpy as np
import pytest
import torch

import cnnlab

TINY = {
    "data": {"train_limit": 300, "val_fraction": 0.05},
    "model": {"filters": 4, "hidden_units": [16]},
    "train": {"epochs": 1, "eval_batch_size": 1000, "seed": 7},
}


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), torch.rand(1).item()


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@pytest.mark.slow
@pytest.mark.parametrize(
    "call",
    [
        lambda: cnnlab.summary(TINY),
        lambda: cnnlab.train(TINY, track=False, progress=False),
    ],
    ids=["summary", "train"],
)
def test_the_next_cell_draws_what_it_would_have_drawn(call, fmnist):
    _seed(123)
    expected = _draws()
    _seed(123)
    call()
    assert _draws() == expected
