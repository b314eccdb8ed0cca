import re
from pathlib import Path

import mlflow
import pytest

from cnnlab.config import ConfigError
from cnnlab.reports import PUBLISHED
from cnnlab.study import QUICK, load_step, load_steps, run_study
from cnnlab.tracking import default_uri

ROOT = Path(__file__).resolve().parents[1]

TINY_STEP = """
[step]
kind = "train"
description = "Two widths."
published = {{ accuracy = "79.88%" }}
variants = [{{ name = "narrow", set = ["model.filters=4"] }}, {{ name = "wide" }}]

[data]
train_limit = 500
val_fraction = 0.02

[model]
filters = 8
hidden_units = [16]

[train]
epochs = {epochs}
eval_batch_size = 500
"""


def test_shipped_study_parses_completely():
    steps = load_steps(ROOT / "experiments")
    assert [s.name for s in steps][:5] == [
        "1-baseline",
        "2-extended-training",
        "3-architecture",
        "4-regularization",
        "5-optimization",
    ]
    assert steps[0].kind == "tune" and steps[0].config(steps[0].variants[0], False).search.trials
    assert len(steps[4].variants) == 8  # 2 optimizers x 2 learning rates x 2 weight decays
    assert len({v.name for v in steps[4].variants}) == 8
    for step in steps[1:5]:  # steps 1-5 use the course's epoch: 100 steps x 64 images
        cfg = step.config(step.variants[0], quick=False)
        assert (cfg.train.steps_per_epoch, cfg.train.batch_size) == (100, 64)


def test_quick_caps_epochs_and_data():
    step = load_steps(ROOT / "experiments", only="architecture")[0]
    cfg = step.config(step.variants[0], quick=True)
    assert cfg.train.epochs == QUICK["train.epochs"]
    assert cfg.train.steps_per_epoch == QUICK["train.steps_per_epoch"]
    assert cfg.data.train_limit == QUICK["data.train_limit"]


@pytest.mark.parametrize(
    "step, message",
    [
        ('kind = "fit"', "step.kind: expected train or tune"),
        ('kindd = "train"', "step.kindd: unknown key (did you mean step.kind?)"),
        ('grid = { "train.lr" = [] }', "step.grid: expected key = [values, ...]"),
        ('variants = [{ name = "a", set = ["train.lr=-1"] }]', "train.lr: expected > 0"),
        ('variants = [{ name = "a" }, { name = "a" }]', "names must be unique"),
    ],
)
def test_bad_steps_fail_before_anything_runs(step, message, tmp_path):
    (tmp_path / "1-x.toml").write_text(f"[step]\n{step}\n")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_steps(tmp_path)


def test_only_names_a_missing_step(tmp_path):
    (tmp_path / "1-first.toml").write_text("")
    with pytest.raises(ConfigError, match="no step 'frist'.*did you mean 1-first"):
        load_steps(tmp_path, only="frist")


def test_base_config_is_overlaid(tmp_path):
    (tmp_path / "base.toml").write_text("[train]\nlr = 0.5\nepochs = 7\n")
    study = tmp_path / "study"
    study.mkdir()
    (study / "1-x.toml").write_text('[step]\nbase = "../base.toml"\n[train]\nepochs = 2\n')
    cfg = (step := load_step(study / "1-x.toml")).config(step.variants[0], quick=False)
    assert (cfg.train.lr, cfg.train.epochs) == (0.5, 2)


def test_study_runs_tags_and_resumes(tmp_path, monkeypatch, fmnist):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    study = tmp_path / "mini"
    study.mkdir()
    (study / "1-widths.toml").write_text(TINY_STEP.format(epochs=1))
    uri = default_uri(tmp_path / "runs")
    tuned = []
    (study / "2-search.toml").write_text('[step]\nkind = "tune"\n[search]\ntrials = 2\n')

    results, used = run_study(study, tracking_uri=uri, tune=lambda cfg, **kw: tuned.append(cfg))
    assert used == uri
    assert [(r.step, r.runs, r.skipped) for r in results] == [
        ("1-widths", 2, False),
        ("2-search", 2, False),
    ]
    assert tuned[0].tracking.experiment == "mini/2-search"
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("mini/1-widths")
    assert exp.tags[PUBLISHED + "accuracy"] == "79.88%"
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["narrow", "wide"]
    assert {r.info.status for r in runs} == {"FINISHED"}

    # A rerun skips complete steps; a step missing its completion mark reruns only what is missing.
    again, _ = run_study(study, tracking_uri=uri, tune=lambda cfg, **kw: tuned.append(cfg))
    assert [r.skipped for r in again] == [True, True] and len(tuned) == 1
    client.delete_experiment_tag(exp.experiment_id, "cnnlab.step_complete")
    again, _ = run_study(study, tracking_uri=uri, only="widths")
    assert again[0].runs == 0 and len(client.search_runs([exp.experiment_id])) == 2

    # Changing the step invalidates what was done.
    (study / "1-widths.toml").write_text(TINY_STEP.format(epochs=2))
    again, _ = run_study(study, tracking_uri=uri, only="widths")
    assert again[0].runs == 2
