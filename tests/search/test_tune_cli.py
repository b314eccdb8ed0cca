"""`cnnlab tune` as users meet it: --check, bad input (exit 2, no run), all failed (exit 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from search_helpers import SMALL_SPACE, all_runs, split_runs, write_config

from cnnlab.cli import main

STUDY = str(Path(__file__).resolve().parents[2] / "configs" / "study-search.toml")


@pytest.mark.slow
def test_check_reports_the_study_spaces_invalid_share(capsys, workdir):
    assert main(["tune", STUDY, "--check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["samples"] == 1000
    # Most of the study's space builds networks that do not fit 28x28 (roughly three in four).
    assert 0.5 < report["invalid_share"] < 0.95
    assert report["small_share"] > 0 and report["inert_keys"] == []
    assert not Path("cnnlab-runs").exists()
    assert main(["tune", STUDY, "--check"]) == 0
    out = capsys.readouterr().out
    assert "invalid (refused before training)" in out and "final map <= 2x2" in out


@pytest.mark.slow
def test_check_names_a_key_that_does_not_change_the_model(tmp_path, capsys, workdir):
    # With no hidden layer in the head, its dropout has nowhere to go.
    space = {**SMALL_SPACE, "model.dropout": {"dist": "uniform", "low": 0.0, "high": 0.5}}
    path = write_config(tmp_path / "s.toml", ["model.hidden_units=[]"], space)
    assert main(["tune", path, "--check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["inert_keys"] == ["model.dropout"] and report["invalid"] == 0


BAD = [
    (["--trials", "0"], "search.trials: expected > 0, got 0"),
    (["--set", "search.engine=nevergrad"], "search.engine: expected one of"),
    (["--set", 'search.space={"model.filters" = {dist = "gauss", low = 1, high = 2}}'], "gauss"),
    (["--set", 'search.space={"train.lrr" = {dist = "uniform", low = 1, high = 2}}'], "train.lr?"),
    (
        ["--set", 'search.space={"model.num_layers" = {dist = "intrange", low = 8, high = 9}}'],
        "all 200 sampled configurations are invalid",
    ),
    (["--set", "search.pruner=median"], "needs search.engine"),
    (["--set", "data.val_fraction=0"], "a search selects on the validation split"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_one_line_exit_2_and_no_run(args, message, tmp_path, capsys, workdir):
    path = write_config(tmp_path / "s.toml", [], SMALL_SPACE)
    assert main(["tune", path, *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not Path("cnnlab-runs").exists()


def test_all_trials_failing_exits_4_with_the_first_error(tmp_path, capsys, store, experiment):
    # Every sampled learning rate is absurd: each trial's loss turns NaN or infinite.
    space = {"train.lr": {"dist": "choice", "options": [1e9, 1e10]}}
    overrides = ["train.epochs=1", "search.trials=2", f'tracking.experiment="{experiment}"']
    path = write_config(tmp_path / "s.toml", overrides, space)
    assert main(["tune", path, "--json", "--tracking-uri", store]) == 4
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()[-1]
    assert err.startswith("cnnlab: error: all 2 trials failed; first: trial 0 (diverged)"), err
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert out["succeeded"] == 0 and out["failed"] == 2 and out["best_params"] is None
    assert "0/2 trials succeeded" in captured.out
    parents, children = split_runs(all_runs(store, experiment))
    assert [p.info.status for p in parents] == ["FAILED"]
    assert sorted(c.info.status for c in children) == ["FAILED", "FAILED"]
    assert {c.data.tags["cnnlab.fail_reason"] for c in children} == {"diverged"}
