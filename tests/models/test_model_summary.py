"""summarize / format_summary: shapes, counts, MACs, warnings, JSON."""

import json

import torch
from torch import nn

from cnnlab.config import CnnConfig, MlpConfig
from cnnlab.models import create_model, format_summary, summarize

COURSE = CnnConfig(filters=32, num_layers=3, padding=[1, 0], head_pool="avg")
SIX = CnnConfig(filters=32, num_layers=2, padding=[1, 0], head_pool="flatten")


def test_conv_macs_by_hand():
    summary = summarize(nn.Sequential(nn.Conv2d(1, 4, 3)), (1, 8, 8))
    (row,) = summary.layers
    assert (row.name, row.type, row.out_shape) == ("0", "Conv2d", (4, 6, 6))
    assert row.macs == (4 * 6 * 6) * 1 * (3 * 3) == 1296
    assert row.params == 4 * 9 + 4


def test_grouped_conv_and_linear_macs():
    model = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.Flatten(), nn.Linear(72, 5))
    rows = summarize(model, (4, 5, 5)).layers
    assert rows[0].macs == (8 * 3 * 3) * (4 // 2) * 9
    assert rows[2].macs == 72 * 5
    assert rows[1].macs == 0


def test_course_rows_and_totals():
    summary = summarize(create_model(COURSE))
    assert summary.layers[0].name == "features.0.0"
    assert summary.layers[-1].name == "head.6"
    assert summary.layers[-1].out_shape == (10,)
    assert summary.total_macs == sum(r.macs for r in summary.layers)
    assert summary.total_params == sum(r.params for r in summary.layers)


def test_warning_at_two_by_two_not_at_six_by_six():
    (warning,) = summarize(create_model(COURSE)).warnings
    assert warning.startswith("final feature map is 2x2:")
    assert summarize(create_model(SIX)).warnings == []


def test_mlp_has_no_feature_map():
    summary = summarize(create_model(MlpConfig()))
    assert summary.final_map is None
    assert summary.spatial_chain == []
    assert summary.warnings == []
    assert summary.total_params == (784 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10)


def test_modes_restored_and_no_grad_kept():
    model = create_model(CnnConfig(batchnorm=True, conv_dropout=0.1))
    model.features[0].eval()  # a mixed state must come back exactly
    before = {name: m.training for name, m in model.named_modules()}
    summarize(model)
    assert {name: m.training for name, m in model.named_modules()} == before
    assert all(p.grad is None for p in model.parameters())
    assert not model.features[0][0]._forward_hooks  # hooks removed


def test_to_dict_is_json():
    data = json.loads(json.dumps(summarize(create_model(COURSE)).to_dict()))
    assert data["final_map"] == [32, 2, 2]
    assert data["spatial_chain"] == [28, 28, 14, 12, 6, 4, 2]
    assert data["layers"][0] == {
        "name": "features.0.0", "type": "Conv2d", "out_shape": [32, 28, 28],
        "params": 320, "macs": 32 * 28 * 28 * 9,
    }  # fmt: skip


def test_format_summary_table():
    text = format_summary(summarize(create_model(COURSE)))
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "params", "MACs"]
    assert any(line.startswith("features.0.0") and "32 x 28 x 28" in line for line in lines)
    assert "parameters: 31,946" in text
    assert "multiply-adds per image:" in text
    assert "final feature map: 32 x 2 x 2" in text
    assert "spatial chain: 28 -> 28 -> 14 -> 12 -> 6 -> 4 -> 2" in text
    assert "warning: final feature map is 2x2" in text


def test_summary_on_float64_model():
    model = create_model(SIX).to(torch.float64)
    assert summarize(model).final_map == (32, 6, 6)
