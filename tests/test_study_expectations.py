"""A step's expectations: claims of several parts, any logged metric, frozen when first run."""

import dataclasses
import json
import re
from pathlib import Path

import mlflow
import pytest

from cnnlab.config import ConfigError
from cnnlab.study import load_steps, run_study
from cnnlab.tracking import default_uri
from cnnlab.tracking.tags import EDITED_TAG, FROZEN_TAG

ROOT = Path(__file__).resolve().parents[1]
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$")  # UTC, to the minute
TWO = 'variants = [{ name = "a" }, { name = "b" }]\nreference = "a"\n'
GOOD = '{ direction = "better", variant = "b" }'
PART_KEYS = {"metric", "direction", "min_difference", "variant", "reference", "sense"}

STEP = """
[step]
kind = "train"
variants = [{{ name = "narrow", set = ["model.filters=4"] }}, {{ name = "wide" }}]
reference = "narrow"
hypothesis = "{hypothesis}"
expect = [
  {{ metric = "test_accuracy", direction = "better", variant = "wide" }},
  {{ metric = "epoch_seconds", sense = "lower", direction = "not_worse", min_difference = 1.0 }},
]

[data]
train_limit = 300
val_fraction = 0.02

[model]
filters = 8
hidden_units = [16]

[train]
epochs = 1
eval_batch_size = 500
"""


def _load(tmp_path, expect: str):
    (tmp_path / "1-x.toml").write_text(f"[step]\n{TWO}expect = {expect}\n")
    return load_steps(tmp_path)[0]


def test_a_list_of_tables_is_a_claim_of_several_parts(tmp_path):
    step = _load(
        tmp_path,
        f'[{GOOD}, {{ metric = "seconds", direction = "not_worse", min_difference = 2.0, '
        'variant = "b" }, { metric = "epoch_seconds", sense = "lower", direction = "better", '
        'variant = "b" }]',
    )
    assert [(e.metric, e.direction, e.sense) for e in step.expect] == [
        ("test_accuracy", "better", None),
        ("seconds", "not_worse", None),  # a METRICS name: its sense is known
        ("epoch_seconds", "better", "lower"),
    ]
    assert {(e.reference.step, e.reference.variant) for e in step.expect} == {("1-x", "a")}
    assert step.expect[1].min_difference == 2.0
    assert len(_load(tmp_path, GOOD).expect) == 1  # one table: one part, as before


@pytest.mark.parametrize(
    "part, message",
    [
        ('{ direction = "up" }', "step.expect[1].direction: expected one of better, worse"),
        ('{ direction = "better", margin = 1 }', "step.expect[1].margin: unknown key"),
        ('{ direction = "better", variant = "c" }', "step.expect[1].variant: step 1-x has no"),
        ('{ direction = "same" }', "step.expect[1].min_difference: direction 'same' needs"),
        ('{ direction = "better", min_difference = -1 }', "step.expect[1].min_difference: expec"),
        ('{ direction = "better", reference = "zz" }', "step.expect[1].reference: no step 'zz'"),
        ('{ metric = "acc", direction = "better" }', "step.expect[1].metric: expected one of"),
        ('{ metric = "test_acc", direction = "better" }', "(did you mean test_accuracy?)"),
        ('{ metric = "x", sense = "up", direction = "better" }', "step.expect[1].sense: expected"),
        (
            '{ metric = "test_loss", sense = "lower", direction = "better" }',
            "step.expect[1].sense: test_loss is one of METRICS",
        ),
        ('{ metric = 3, sense = "lower", direction = "better" }', "step.expect[1].metric: expec"),
    ],
)
def test_each_bad_part_is_one_line_naming_it(part, message, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        _load(tmp_path, f"[{GOOD}, {part}]")
    assert "\n" not in str(error.value)


def test_a_metric_outside_metrics_needs_its_sense(tmp_path):
    with pytest.raises(ConfigError, match=re.escape('a logged metric with sense = "higher"')):
        _load(tmp_path, '{ metric = "epoch_seconds", direction = "better", variant = "b" }')
    with pytest.raises(ConfigError, match=re.escape("step.expect: expected a table")):
        _load(tmp_path, "[]")
    with pytest.raises(ConfigError, match=re.escape("or a list of them")):
        _load(tmp_path, f'[{GOOD}, "better"]')


@pytest.mark.slow
def test_expectations_are_written_as_a_list_and_frozen(tmp_path, monkeypatch, fmnist):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    study = tmp_path / "mini"
    study.mkdir()
    path = study / "1-widths.toml"
    path.write_text(STEP.format(hypothesis="Wide wins, no slower."))
    uri = default_uri(tmp_path / "runs")
    results, _ = run_study(study, tracking_uri=uri, echo=lambda line: None)
    assert results[0].runs == 2
    client = mlflow.MlflowClient(uri)
    exp_id = client.get_experiment_by_name("mini/1-widths").experiment_id
    tags = client.get_experiment(exp_id).tags
    parts = json.loads(tags["cnnlab.expect"])
    assert isinstance(parts, list) and [set(p) for p in parts] == [PART_KEYS, PART_KEYS]
    assert parts[0] == {
        "metric": "test_accuracy",
        "direction": "better",
        "min_difference": 0.0,
        "variant": "wide",
        "reference": {"experiment": "mini/1-widths", "variant": "narrow"},
        "sense": None,
    }
    assert (parts[1]["metric"], parts[1]["sense"], parts[1]["variant"]) == (
        "epoch_seconds",
        "lower",
        None,  # the step's selected variant
    )
    frozen = json.loads(tags[FROZEN_TAG])
    assert set(frozen) == {"hypothesis", "expect", "at"} and STAMP.match(frozen["at"])
    assert (frozen["hypothesis"], frozen["expect"]) == ("Wide wins, no slower.", parts)
    assert EDITED_TAG not in tags

    # Edited after its runs finished: the step is complete (nothing trains), the tags say
    # what the file says now, the frozen record what was expected before, and when it changed.
    path.write_text(STEP.format(hypothesis="Wide wins.").replace("not_worse", "better"))
    again, _ = run_study(study, tracking_uri=uri, echo=lambda line: None)
    assert again[0].skipped
    tags = client.get_experiment(exp_id).tags
    assert tags["cnnlab.hypothesis"] == "Wide wins."
    assert json.loads(tags["cnnlab.expect"])[1]["direction"] == "better"
    assert json.loads(tags[FROZEN_TAG]) == frozen
    assert STAMP.match(tags[EDITED_TAG])

    # Put back as it was: nothing is edited any more.
    path.write_text(STEP.format(hypothesis="Wide wins, no slower."))
    run_study(study, tracking_uri=uri, echo=lambda line: None)
    tags = client.get_experiment(exp_id).tags
    assert json.loads(tags[FROZEN_TAG]) == frozen and EDITED_TAG not in tags


@pytest.mark.slow
def test_before_any_run_finished_the_frozen_record_follows_the_edit(tmp_path, monkeypatch, fmnist):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    study = tmp_path / "mini"
    study.mkdir()
    path = study / "1-search.toml"
    path.write_text('[step]\nkind = "tune"\nhypothesis = "Before."\n')
    uri = default_uri(tmp_path / "runs")
    searched = []  # a search that records nothing: no run of the step finishes
    run_study(study, tracking_uri=uri, tune=lambda cfg, **kw: searched.append(cfg))
    client = mlflow.MlflowClient(uri)
    exp_id = client.get_experiment_by_name("mini/1-search").experiment_id
    frozen = json.loads(client.get_experiment(exp_id).tags[FROZEN_TAG])
    assert (frozen["hypothesis"], frozen["expect"]) == ("Before.", None)

    path.write_text('[step]\nkind = "tune"\nhypothesis = "After."\n')
    run_study(study, tracking_uri=uri, tune=lambda cfg, **kw: searched.append(cfg))
    tags = client.get_experiment(exp_id).tags
    assert json.loads(tags[FROZEN_TAG])["hypothesis"] == "After."
    assert tags["cnnlab.hypothesis"] == "After." and EDITED_TAG not in tags


def test_shipped_hypotheses_check_every_part_they_claim():
    steps = {s.name: s for s in load_steps(ROOT / "experiments")}  # the folder, checked whole
    for name, step in steps.items():
        assert bool(step.hypothesis) == bool(step.expect), name  # a claim and its checks
    recipe = steps["6-cnnlab-recipe"]  # beats step 3 AND trains in less time: two parts
    assert [(e.metric, e.direction) for e in recipe.expect] == [
        ("test_accuracy", "better"),
        ("seconds", "better"),
    ]
    assert {e.reference.step for e in recipe.expect} == {"3-architecture"}
    # Step 5: AdamW expected to beat Adam, on a pair of its own variants that differ in the
    # optimizer alone (the same lr and weight decay).
    step = steps["5-optimization"]
    (part,) = step.expect
    assert (part.metric, part.direction, part.reference.step) == (
        "test_accuracy",
        "better",
        "5-optimization",
    )
    by_name = {v.name: v for v in step.variants}
    subject = step.config(by_name[part.variant], quick=False).train
    reference = step.config(by_name[part.reference.variant], quick=False).train
    assert (subject.optimizer, reference.optimizer) == ("adamw", "adam")
    assert dataclasses.replace(subject, optimizer="adam") == reference


def test_a_step_names_what_selects_its_variant(tmp_path):
    from cnnlab.config import ConfigError
    from cnnlab.study import load_step

    path = tmp_path / "1-s.toml"
    path.write_text('[step]\nselect = "val_accuracy"\n')
    assert load_step(path).select == "val_accuracy"
    path.write_text('[step]\nselect = "test_accuracy"\n')
    with pytest.raises(ConfigError, match="step.select: expected one of val_loss, val_accuracy"):
        load_step(path)
