import re
from pathlib import Path

import mlflow
import pytest

from cnnlab.config import ConfigError
from cnnlab.reports import PUBLISHED, collect
from cnnlab.study import QUICK, load_step, load_steps, run_study

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

[tracking]
log_model = false  # what these tests read is in the runs' metrics, tags and params

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


@pytest.mark.slow
def test_study_runs_tags_and_resumes(tmp_path, monkeypatch, fmnist, empty_store):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    study = tmp_path / "mini"
    study.mkdir()
    (study / "1-widths.toml").write_text(TINY_STEP.format(epochs=1))
    uri = empty_store(tmp_path / "runs" / "mlflow.db")
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


@pytest.mark.parametrize(
    "step, message",
    [
        ("seeds = 0", "step.seeds: expected a count >= 1 or a list of distinct integers, got 0"),
        ("seeds = [1, 1]", "step.seeds: expected a count >= 1 or a list of distinct integers"),
        ('seeds = "3"', "step.seeds: expected a count >= 1"),
        ('kind = "tune"\nseeds = 3', "step.seeds: a tune step runs one search"),
        ('reference = "nope"', "step.reference: no step 'nope'"),
        ('reference = "1-x:nope"', "step 1-x has no variant 'nope'"),
        ('reference = "1-x"', "names the step itself"),
        ('expect = { direction = "up" }', "step.expect.direction: expected one of better, worse"),
        (
            'expect = { metric = "acc", direction = "better" }',
            "step.expect.metric: expected one of",
        ),
        ('expect = { direction = "same" }', "direction 'same' needs a margin > 0"),
        ('expect = { direction = "better", variant = "b" }', "step.expect.variant: step 1-x has"),
        ('expect = { direction = "better" }', "the first step needs a reference"),
        ('expect = { direction = "better", margin = 1 }', "step.expect.margin: unknown key"),
        ('expect = { direction = "better", min_difference = -1 }', "expected a number >= 0"),
    ],
)
def test_bad_seeds_references_and_expectations_fail_before_anything_runs(step, message, tmp_path):
    (tmp_path / "1-x.toml").write_text(f"[step]\n{step}\n")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_steps(tmp_path)


def test_references_resolve_to_steps_and_variants(tmp_path):
    two = 'variants = [{ name = "a" }, { name = "b" }]'
    (tmp_path / "1-first.toml").write_text(f"[step]\n{two}\n")
    (tmp_path / "2-second.toml").write_text("[step]\nseeds = [5, 9]\n")
    (tmp_path / "3-third.toml").write_text(
        f'[step]\n{two}\nreference = "first:b"\nseeds = 2\n'
        'expect = { direction = "not_worse", min_difference = 0.01, variant = "a", '
        'reference = "b" }\n'
    )
    first, second, third = load_steps(tmp_path)
    assert first.reference.step == "1-first" and first.reference.variant == "a"  # its first variant
    assert (second.reference.step, second.reference.variant) == ("1-first", None)  # selected
    assert (third.reference.step, third.reference.variant) == ("1-first", "b")
    (part,) = third.expect  # a single table is a claim of one part
    assert (part.reference.step, part.reference.variant) == ("3-third", "b")
    assert part.variant == "a" and part.min_difference == 0.01
    assert second.seed_list(second.variants[0]) == [5, 9]
    assert third.seed_list(third.variants[0]) == [42, 43]  # a count starts at train.seed
    assert third.seed_list(third.variants[0], override=[1]) == [1]
    cfg = third.config(third.variants[0], quick=False, seed=43)
    assert cfg.train.seed == 43 and cfg.data.split_seed == 42  # the split does not move


def test_shipped_study_states_its_hypotheses_and_seeds():
    steps = load_steps(ROOT / "experiments")
    for step in steps[1:]:  # steps 2-5 and the recipe: 2 or 3 seeds, a hypothesis, a check
        expected = [42, 43] if step.name == "5-optimization" else [42, 43, 44]
        assert step.seed_list(step.variants[0]) == expected
        assert step.hypothesis and step.expect
    assert steps[2].expect[0].reference.step == "2-extended-training"
    assert steps[3].expect[0].direction == "same"


@pytest.mark.slow
def test_seeds_run_tag_and_resume_per_variant_and_seed(tmp_path, monkeypatch, fmnist, empty_store):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    study = tmp_path / "seeded"
    study.mkdir()
    (study / "1-widths.toml").write_text(
        TINY_STEP.format(epochs=1).replace("[data]", "seeds = [1, 2]\n[data]")
    )
    uri = empty_store(tmp_path / "runs" / "mlflow.db")
    lines, counts = [], []
    results, _ = run_study(
        study, tracking_uri=uri, echo=lines.append, on_run=lambda *c: counts.append(c)
    )
    assert results[0].runs == 4 and counts == [(1, 4), (2, 4), (3, 4), (4, 4)]
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("seeded/1-widths")
    runs = client.search_runs([exp.experiment_id])
    pairs = sorted((r.data.tags["cnnlab.variant"], r.data.tags["cnnlab.seed"]) for r in runs)
    assert pairs == [("narrow", "1"), ("narrow", "2"), ("wide", "1"), ("wide", "2")]
    assert sorted(r.info.run_name for r in runs)[0] == "narrow seed=1"
    assert {r.data.params["train.seed"] for r in runs} == {"1", "2"}
    assert {r.data.params["data.split_seed"] for r in runs} == {"42"}
    assert re.search(r"\[run 4/4, \d+s elapsed\]", lines[-1])
    assert "left]" in lines[1]  # an estimate once some work is done

    # One run lost (as if killed): the rerun trains only that (variant, seed).
    lost = next(r for r in runs if r.info.run_name == "wide seed=2")
    client.set_terminated(lost.info.run_id, status="KILLED")
    client.delete_experiment_tag(exp.experiment_id, "cnnlab.step_complete")
    again, _ = run_study(study, tracking_uri=uri, echo=lines.append)
    assert again[0].runs == 1
    # More seeds keep the runs already made: only the new seed's runs train.
    again, _ = run_study(study, tracking_uri=uri, seeds=[1, 2, 3], echo=lines.append)
    assert again[0].runs == 2
    # A hypothesis written after the runs reaches the experiment; nothing trains again.
    text = (study / "1-widths.toml").read_text()
    (study / "1-widths.toml").write_text(
        text.replace("[data]", 'hypothesis = "Wide wins."\n[data]').replace(
            'description = "Two widths."\n', ""
        )
    )
    again, _ = run_study(study, tracking_uri=uri, seeds=[1, 2, 3], echo=lines.append)
    assert again[0].skipped
    tags = client.get_experiment(exp.experiment_id).tags
    assert tags["cnnlab.hypothesis"] == "Wide wins." and "cnnlab.description" not in tags
    # Fewer seeds: nothing trains, and the report takes only the runs the step now names.
    again, _ = run_study(study, tracking_uri=uri, seeds=[1, 2], echo=lines.append)
    assert again[0].runs == 0 and not again[0].skipped
    (record,) = collect(uri, ["seeded/1-widths"])
    assert sorted(r.tags["cnnlab.seed"] for r in record.trained) == ["1", "1", "2", "2"]
