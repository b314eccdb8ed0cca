"""make_splits: sizes, seeding, disjointness, and statistics of the training split."""

from __future__ import annotations

import pytest
import torch

from cnnlab.config import ConfigError
from cnnlab.data import RawData, Splits, describe_splits, make_splits, pixel_stats


@pytest.fixture(scope="module")
def splits(raw: RawData) -> Splits:
    return make_splits(raw, val_fraction=0.1, train_limit=0, seed=42)


def pair_keys(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """One exact float64 key per (image, label) pair, sorted: equal keys mean equal multisets."""
    weights = torch.randint(0, 2**20, (28 * 28,), generator=torch.Generator().manual_seed(0))
    keys = [c.reshape(len(c), 28 * 28).double() @ weights.double() for c in images.split(8192)]
    # Image keys stay below 2**38, so key * 16 + label is exact in float64 (53-bit mantissa).
    return (torch.cat(keys) * 16 + labels.double()).sort().values


def test_sizes_shapes_and_dtypes(splits: Splits):
    assert describe_splits(splits) == {
        "train": 54_000,
        "val": 6_000,
        "test": 10_000,
        "num_classes": 10,
        "input_shape": [1, 28, 28],
        "mean": [round(splits.mean[0], 6)],
        "std": [round(splits.std[0], 6)],
    }
    for x, y in [(splits.train_x, splits.train_y), (splits.val_x, splits.val_y)]:
        assert x.dtype == torch.uint8 and x.is_contiguous() and x.shape[1:] == (1, 28, 28)
        assert y.dtype == torch.int64 and y.shape == (len(x),)
    assert splits.test_x.shape == (10_000, 1, 28, 28) and splits.test_x.dtype == torch.uint8
    assert splits.input_shape == (1, 28, 28) and splits.num_classes == 10


def test_carries_names_and_checksum(splits: Splits, raw: RawData):
    assert splits.class_names == raw.class_names
    assert splits.checksum == raw.checksum


def test_test_split_is_the_official_test_set(splits: Splits, raw: RawData):
    assert torch.equal(splits.test_x, raw.test_images)
    assert torch.equal(splits.test_y, raw.test_labels)


def test_train_and_val_partition_the_training_set(splits: Splits, raw: RawData):
    # Same multiset of (image, label) pairs: disjoint, complete, and no label moved.
    both_x = torch.cat([splits.train_x, splits.val_x])[:, 0]
    both_y = torch.cat([splits.train_y, splits.val_y])
    expected = pair_keys(raw.train_images[:, 0], raw.train_labels)
    assert torch.equal(pair_keys(both_x, both_y), expected)


def test_same_seed_same_splits(splits: Splits, raw: RawData):
    again = make_splits(raw, val_fraction=0.1, train_limit=0, seed=42)
    assert torch.equal(again.val_x, splits.val_x) and torch.equal(again.train_y, splits.train_y)


def test_other_seed_other_splits(splits: Splits, raw: RawData):
    other = make_splits(raw, val_fraction=0.1, train_limit=1000, seed=43)
    assert not torch.equal(other.val_y, splits.val_y)


def test_train_limit_keeps_validation(splits: Splits, raw: RawData):
    small = make_splits(raw, val_fraction=0.1, train_limit=1000, seed=42)
    assert len(small.train_x) == 1000
    assert torch.equal(small.train_x, splits.train_x[:1000])
    assert torch.equal(small.val_x, splits.val_x) and torch.equal(small.val_y, splits.val_y)


def test_no_validation(raw: RawData):
    none = make_splits(raw, val_fraction=0.0, train_limit=500, seed=1)
    assert none.val_x.shape == (0, 1, 28, 28) and none.val_y.shape == (0,)
    assert len(none.train_x) == 500


def test_statistics_of_the_training_split(splits: Splits):
    x = splits.train_x[:2000].double() / 255
    (mean,), (std,) = pixel_stats(splits.train_x[:2000])
    assert mean == pytest.approx(float(x.mean()), abs=1e-12)
    assert std == pytest.approx(float(x.std(unbiased=False)), abs=1e-9)
    # Known statistics of the full Fashion-MNIST training set.
    assert splits.mean[0] == pytest.approx(0.2860, abs=2e-3)
    assert splits.std[0] == pytest.approx(0.3530, abs=2e-3)


def test_statistics_are_per_channel():
    images = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    images[:, 1] = 255
    images[:2, 2] = 255
    mean, std = pixel_stats(images)
    assert mean == pytest.approx((0.0, 1.0, 0.5)) and std == pytest.approx((0.0, 0.0, 0.5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"val_fraction": 1.0}, r"data.val_fraction: expected in \[0, 1\), got 1.0"),
        ({"val_fraction": -0.1}, "data.val_fraction"),
        ({"val_fraction": 0.999999999}, "data.val_fraction: expected to leave training images"),
        ({"train_limit": -1}, "data.train_limit: expected >= 0"),
        ({"train_limit": 54_001}, "data.train_limit: expected at most 54,000"),
    ],
)
def test_bad_arguments(raw: RawData, kwargs: dict, match: str):
    args = {"val_fraction": 0.1, "train_limit": 0, "seed": 0} | kwargs
    with pytest.raises(ConfigError, match=match):
        make_splits(raw, **args)
