"""Seeds added while a hypothesis is open (`--until-decided`): which seeds each round asks for,
the false-confirmation rate of the stopping rule on pure noise, and a real study that adds a
round, records it, resumes and reports it."""

import json

import numpy as np
import pytest

from cnnlab.reports import Arm, Judged, Part, judge_hypotheses
from cnnlab.reports._collect import ExperimentRecord, RunRecord
from cnnlab.study._decide import Sequential, open_requests, until_decided
from cnnlab.tracking.tags import LOOKS_TAG

STEP = "sim/1-step"
CLAIM = [
    {
        "metric": "test_accuracy",
        "direction": "better",
        "min_difference": 0.0,
        "variant": "new",
        "reference": {"experiment": STEP, "variant": "old"},
        "sense": None,
    }
]


def _run(variant: str, seed: int, acc: float) -> RunRecord:
    tags = {"cnnlab.variant": variant, "cnnlab.seed": str(seed)}
    return RunRecord(
        f"{variant}-{seed}", variant, STEP, "FINISHED", 0, {}, {"test_accuracy": acc}, tags
    )


class NoiseStudy:
    """One step, two variants with the same true accuracy: what a seed gives is a seed effect
    both variants share plus each run's own noise (the shape seen in the study's runs)."""

    def __init__(self, rng: np.random.Generator, start: int, judged_as: Sequential | None):
        self.rng, self.seed_effect = rng, {}
        tags = {"cnnlab.hypothesis": "New is better.", "cnnlab.expect": json.dumps(CLAIM)}
        if judged_as is not None:
            tags[LOOKS_TAG] = judged_as.tag()
        self.record = ExperimentRecord(STEP, "1", tags, [])
        for seed in range(42, 42 + start):
            self.add("old", seed)
            self.add("new", seed)

    def add(self, variant: str, seed: int) -> None:
        shared = self.seed_effect.setdefault(seed, self.rng.normal(0, 0.005))
        acc = 0.90 + shared + self.rng.normal(0, 0.003)
        self.record.runs.append(_run(variant, seed, acc))
        self.record.__dict__.pop("trained", None)  # a cached property: runs changed

    def judge(self) -> list[Judged]:
        return judge_hypotheses([self.record], lambda name: self.record)

    def extend(self, requests, number: int) -> int:
        for r in requests:
            for seed in r.seeds:
                self.add(r.variant, seed)
        return sum(len(r.seeds) for r in requests)


def _false_confirmations(repeats: int, plan: Sequential, judged_as: Sequential | None) -> float:
    """How often pure noise ends "confirmed" when seeds are added until decided; `judged_as`:
    the plan the verdicts are judged by (None: every look at the plain 95% level)."""
    rng = np.random.default_rng(7)
    confirmed = 0
    for _ in range(repeats):
        study = NoiseStudy(rng, plan.start, judged_as)
        (final,) = until_decided(study.judge, study.extend, {STEP: plan}, echo=lambda text: None)
        confirmed += final.verdict == "confirmed"
    return confirmed / repeats


@pytest.mark.slow
def test_until_decided_keeps_false_confirmations_at_the_nominal_rate():
    # 2 seeds, then rounds of 2 up to 8: four looks. 1500 studies of pure noise: the rate's
    # standard error at 2.5% is 0.4 points, so 3.7% is three of them above the nominal rate.
    plan = Sequential(start=2, cap=8)
    assert plan.looks == 4
    repeats = 1500
    rate = _false_confirmations(repeats, plan, plan)
    assert rate <= 0.025 + 3 * np.sqrt(0.025 * 0.975 / repeats), rate
    # The same loop judging every look at 95%, as if each were the only one, confirms noise
    # far more often: the correction is what keeps the rate.
    naive = _false_confirmations(repeats, plan, None)
    assert naive > 0.04 and naive > 2 * rate, (naive, rate)


def _judged(step: str, parts: list[Part], verdict="inconclusive") -> Judged:
    return Judged(step.rsplit("/", 1)[-1], "h", parts, verdict, None, None, "", 3, step)


def _part(subject: Arm, reference: Arm, verdict="inconclusive (the interval straddles)") -> Part:
    return Part("claim", "+0.1 pts", verdict, 0.2, "", (subject, reference))


def test_each_round_adds_the_same_new_seeds_to_both_arms_of_every_open_part():
    a = Arm("s/3-architecture", "3-architecture", (42, 43, 44))
    b = Arm("s/4-regularization", "all", (42, 43, 44))
    c = Arm("s/6-recipe", "6-recipe", (42, 43, 44))
    plans = {"s/4-regularization": Sequential(3, 9), "s/6-recipe": Sequential(3, 9)}
    judged = [
        _judged("s/4-regularization", [_part(b, a)]),
        _judged("s/6-recipe", [_part(c, a), _part(c, a, "confirmed")]),
    ]
    found = {(r.experiment, r.variant): r.seeds for r in open_requests(judged, plans)}
    # The shared reference runs the new seeds once, for both questions.
    assert found == {
        ("s/3-architecture", "3-architecture"): (45, 46, 47),
        ("s/4-regularization", "all"): (45, 46, 47),
        ("s/6-recipe", "6-recipe"): (45, 46, 47),
    }


def test_no_round_for_decided_hypotheses_arms_at_the_cap_or_steps_judged_once():
    a = Arm("s/1", "old", tuple(range(42, 51)))
    b = Arm("s/1", "new", tuple(range(42, 51)))
    plans = {"s/1": Sequential(3, 9)}
    assert open_requests([_judged("s/1", [_part(b, a)])], plans) == []  # 9 seeds: the cap
    few = (Arm("s/1", "old", (42, 43, 44)), Arm("s/1", "new", (42, 43, 44)))
    assert open_requests([_judged("s/1", [_part(*few)], "confirmed")], plans) == []
    assert open_requests([_judged("s/1", [_part(*few)])], {}) == []  # not judged in rounds
    # The last round stops at the cap: 8 seeds, cap 9, rounds of 3: one more seed.
    eight = (Arm("s/1", "old", tuple(range(42, 50))), Arm("s/1", "new", tuple(range(42, 50))))
    (r, _) = open_requests([_judged("s/1", [_part(*eight)])], plans)
    assert r.seeds == (50,)


@pytest.mark.parametrize(("start", "cap", "looks"), [(3, 9, 3), (2, 8, 4), (3, 10, 4), (3, 3, 1)])
def test_planned_looks(start, cap, looks):
    assert Sequential(start, cap).looks == looks


# Both variants make the same predictions at any size: 500 training and 1,200 validation
# images, no MLflow model (the test reads runs, tags and the report).
TINY = """
[data]
train_limit = 500
val_fraction = 0.02

[model]
filters = 8
hidden_units = [32]

[train]
epochs = 2
lr = 3e-3
eval_batch_size = 1000

[tracking]
log_model = false
"""
# One config under two names (evaluation batches of another size change no prediction): the
# claim that one beats the other cannot be decided, so rounds go on up to the cap.
IDENTICAL = """
[step]
description = "One config under two names."
variants = [{ name = "a" }, { name = "b", set = ["train.eval_batch_size=500"] }]
seeds = 2
hypothesis = "b beats a."
expect = { direction = "better", variant = "b", reference = "a" }
"""


@pytest.mark.slow
def test_a_real_study_adds_a_round_records_it_resumes_and_reports_it(
    tmp_path, monkeypatch, fmnist, empty_store
):
    import mlflow

    from cnnlab.api import run_study
    from cnnlab.tracking.tags import ADDED_TAG

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    folder = tmp_path / "seq"
    folder.mkdir()
    (folder / "1-same.toml").write_text(IDENTICAL + TINY)
    uri = empty_store(tmp_path / "runs.db")
    lines: list[str] = []
    study = run_study(
        folder, tracking_uri=uri, out=tmp_path / "report", progress=False,
        echo=lines.append, until_decided=True, max_seeds=4,
    )  # fmt: skip
    (step,) = study.steps
    assert (step.runs, step.added_runs) == (4, 4)
    assert any(line.startswith("round 2: seeds 44, 45 for b") for line in lines), lines
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("seq/1-same")
    assert json.loads(exp.tags[LOOKS_TAG]) == {"looks": 2, "round": 2, "max_seeds": 4}
    added = json.loads(exp.tags[ADDED_TAG])
    assert [(e["variant"], e["seeds"], e["round"]) for e in added] == [
        ("b", [44, 45], 2),
        ("a", [44, 45], 2),
    ]
    runs = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'")
    pairs = {(r.data.tags["cnnlab.variant"], int(r.data.tags["cnnlab.seed"])) for r in runs}
    assert pairs == {(v, s) for v in "ab" for s in (42, 43, 44, 45)}
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| 1-same | b | 44, 45 | 2 | 1-same open at n=2:" in md
    assert "judged in up to 2 looks" in md
    hypothesis_row = next(line for line in md.splitlines() if line.startswith("| 1-same | b beats"))
    assert "inconclusive" in hypothesis_row and "(n=4 vs 4)" in hypothesis_row

    # Interrupted in round 2 (one of its runs gone, the step not marked complete): the same
    # call runs that run alone, and asks for no further round (the arms are at the cap).
    gone = next(r for r in runs if r.data.tags["cnnlab.seed"] == "45")
    client.delete_run(gone.info.run_id)
    client.delete_experiment_tag(exp.experiment_id, "cnnlab.step_complete")
    again = run_study(
        folder, tracking_uri=uri, out=tmp_path / "report", progress=False,
        until_decided=True, max_seeds=4,
    )  # fmt: skip
    assert [(s.runs, s.added_runs) for s in again.steps] == [(1, 0)]
    assert len(json.loads(client.get_experiment(exp.experiment_id).tags[ADDED_TAG])) == 2


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-seeds", "4"], "--max-seeds: caps the rounds of --until-decided, which is not set"),
        (["--until-decided", "--max-seeds", "1"], "--max-seeds: expected an integer >= 2, got 1"),
    ],
)
def test_bad_max_seeds_is_one_line_exit_2_and_runs_nothing(
    flags, message, tmp_path, monkeypatch, capsys
):
    from pathlib import Path

    from cnnlab.cli import main

    monkeypatch.chdir(tmp_path)
    Path("s").mkdir()
    Path("s/1-x.toml").write_text(IDENTICAL + TINY)
    assert main(["study", "s", *flags]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"cnnlab: error: {message}"]
    assert not Path("cnnlab-runs").exists()
