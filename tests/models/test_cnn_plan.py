"""plan_cnn: the arithmetic, its errors, and agreement with the built modules."""

import random

import pytest

from cnnlab.config import CnnConfig
from cnnlab.models import ArchitectureError, create_model, plan_cnn, summarize


def test_course_plan():
    plans = plan_cnn(CnnConfig(filters=32, num_layers=3, padding=[1, 0]), (1, 28, 28))
    assert [p.block for p in plans] == [1, 2, 3]
    assert [p.in_size for p in plans] == [(28, 28), (14, 14), (6, 6)]
    assert [p.padding for p in plans] == [1, 0, 0]
    assert [p.conv_size for p in plans] == [(28, 28), (12, 12), (4, 4)]
    assert [p.out_size for p in plans] == [(14, 14), (6, 6), (2, 2)]
    assert [(p.in_channels, p.out_channels) for p in plans] == [(1, 32), (32, 32), (32, 32)]


def test_kernel_larger_than_its_input():
    # 28 -conv5-> 24 -pool-> 12 -conv5-> 8 -pool-> 4: block 3's kernel no longer fits.
    cfg = CnnConfig(kernel_size=5, num_layers=4, padding=0)
    message = "model: conv block 3: kernel 5 exceeds its 4x4 input (padding 0)"
    with pytest.raises(ArchitectureError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_cnn(cfg, (1, 28, 28))
    with pytest.raises(ArchitectureError, match="conv block 3"):
        create_model(cfg)


def test_depth_shrinks_map_below_one_pixel():
    # 28 -> 14 -> 7 -> 3 -> 1, then block 5's pool has nothing to halve.
    cfg = CnnConfig(num_layers=6, padding=1, pool_size=2)
    with pytest.raises(ArchitectureError) as caught:
        plan_cnn(cfg, (1, 28, 28))
    assert str(caught.value) == "model: conv block 5: max-pool 2 shrinks the 1x1 map below 1x1"
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"filters": 0}, "model.filters"),
        ({"pool_size": 0}, "model.pool_size"),
        ({"padding": -1}, "model.padding"),
        ({"padding": []}, "model.padding"),
    ],
)
def test_values_out_of_range_are_refused_where_the_config_is_made(changes, match):
    from cnnlab.config import ConfigError

    with pytest.raises(ConfigError, match=match):
        CnnConfig(**changes)


def test_non_square_input():
    plans = plan_cnn(CnnConfig(num_layers=1, padding=0, pool_size=1), (3, 10, 20))
    assert plans[0].conv_size == (8, 18)


def _random_config(rng):
    layers = rng.randint(1, 6)
    padding = rng.choice(
        [rng.randint(0, 2), [rng.randint(0, 2) for _ in range(rng.randint(1, layers))]]
    )
    return CnnConfig(
        filters=rng.randint(1, 6),
        kernel_size=rng.randint(1, 7),
        num_layers=layers,
        padding=padding,
        pool_size=rng.randint(1, 3),
        head_pool=rng.choice(["flatten", "avg", "max"]),
        hidden_units=[8],
    )


def test_plan_agrees_with_the_built_model():
    rng = random.Random(1234)
    built = failed = 0
    for _ in range(150):
        cfg = _random_config(rng)
        try:
            plans = plan_cnn(cfg, (1, 28, 28))
        except ArchitectureError:
            failed += 1
            continue
        summary = summarize(create_model(cfg))
        assert summary.final_map == (cfg.filters, *plans[-1].out_size), cfg
        chain = [28]
        for plan in plans:
            chain.append(plan.conv_size[0])
            if cfg.pool_size > 1:
                chain.append(plan.out_size[0])
        assert summary.spatial_chain == chain, cfg
        built += 1
    assert built > 30 and failed > 10  # both paths were really exercised


def test_padding_values_past_the_last_block_are_unused():
    plans = plan_cnn(CnnConfig(num_layers=1, padding=[1, 0]), (1, 28, 28))
    assert [p.padding for p in plans] == [1]
