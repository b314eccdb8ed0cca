"""Hypotheses judged whole, on hand-made study steps (no training): every part of a claim, Holm
across the study, seeds still needed, and expectations edited after the results."""

import json

from cnnlab.reports import ExperimentRecord, RunRecord, hypotheses_table, judge_hypotheses

SEEDS = (42, 43, 44, 45, 46)


def run(step: str, variant: str, seed: int, acc: float, seconds: float) -> RunRecord:
    return RunRecord(
        f"{step}-{variant}-{seed}",
        f"{variant} seed={seed}",
        step,
        "FINISHED",
        0,
        {},
        {
            "test_accuracy": acc,
            "best_val_loss": 1 - acc,
            "best_val_accuracy": acc,
            "train_seconds": seconds,
        },  # fmt: skip
        {"cnnlab.variant": variant, "cnnlab.seed": str(seed)},
    )


def experiment(name: str, table: dict, expect, hypothesis: str, **tags) -> ExperimentRecord:
    """A step whose variants ran every seed: {variant: ([accuracies], [seconds])}."""
    runs = [
        run(name, variant, seed, acc, sec)
        for variant, (accs, secs) in table.items()
        for seed, acc, sec in zip(SEEDS, accs, secs)
    ]
    tags = {"cnnlab.hypothesis": hypothesis, "cnnlab.expect": json.dumps(expect), **tags}
    return ExperimentRecord(name, name, tags, runs)


def part(metric: str, direction: str, margin: float = 0.0, variant: str = "new") -> dict:
    reference = {"experiment": "s", "variant": "old"}
    return {"metric": metric, "direction": direction, "min_difference": margin,
            "variant": variant, "reference": reference, "sense": None}  # fmt: skip


# New is better by about 2 points on every seed, and no faster: a claim of "better and faster"
# has one true part and one false one.
BETTER = {
    "old": ([0.880, 0.884, 0.879, 0.886, 0.882], [10.0, 10.2, 9.9, 10.1, 10.0]),
    "new": ([0.901, 0.903, 0.900, 0.907, 0.902], [12.0, 12.3, 11.8, 12.1, 12.2]),
}
SAME = {
    "old": ([0.880, 0.884, 0.879, 0.886, 0.882], [10.0, 10.2, 9.9, 10.1, 10.0]),
    "new": ([0.881, 0.882, 0.880, 0.885, 0.884], [10.1, 10.0, 10.0, 10.2, 9.9]),
}


def judged_one(record: ExperimentRecord):
    (found,) = judge_hypotheses([record], lambda name: record if name == record.name else None)
    return found


def test_a_compound_claim_with_one_false_part_is_refuted():
    claim = [part("test_accuracy", "better"), part("seconds", "better")]
    found = judged_one(experiment("s", BETTER, claim, "New is better and faster."))
    assert [p.verdict for p in found.parts] == ["confirmed", "refuted"]
    assert found.verdict == "refuted"
    assert "blocked" in found.parts[0].measured  # the variants share their seeds


def test_a_truly_better_variant_is_confirmed_on_both_parts():
    claim = [part("test_accuracy", "better"), part("seconds", "worse")]
    found = judged_one(experiment("s", BETTER, claim, "New is better, and slower."))
    assert found.verdict == found.holm == "confirmed" and found.p < 0.025


def test_an_identical_pair_is_inconclusive_and_says_what_it_would_take():
    found = judged_one(experiment("s", SAME, [part("test_accuracy", "better")], "New is better."))
    assert found.verdict == "inconclusive"
    assert (
        "seeds per arm for 80% power" in found.parts[0].needed
        or "no number" in found.parts[0].needed
    )
    row = hypotheses_table([found]).rows[0]
    assert row[4].startswith("inconclusive") and "seeds" in row[4]


def test_holm_turns_a_marginal_confirmation_inconclusive_across_the_study():
    claim = [part("test_accuracy", "better")]
    records = [experiment("s", BETTER, claim, "better")]
    # Four more hypotheses that cannot be confirmed make the family five: a p-value just
    # under 0.025 no longer stands, while a tiny one does.
    records += [experiment("s", SAME, claim, f"same {i}") for i in range(4)]
    found = judge_hypotheses(records, lambda name: records[0])
    assert found[0].verdict == "confirmed"
    assert found[0].holm == ("confirmed" if found[0].p < 0.025 / 5 else "inconclusive")
    marginal = [j for j in found if j.verdict == "confirmed" and j.p > 0.025 / 5]
    assert all(j.holm == "inconclusive" for j in marginal)


def test_an_expectation_edited_after_its_results_is_flagged_with_the_old_text():
    claim = [part("test_accuracy", "better")]
    frozen = {"hypothesis": "New is worse.", "expect": [part("test_accuracy", "worse")],
              "at": "2026-12-01 10:00"}  # fmt: skip
    tags = {"cnnlab.frozen": json.dumps(frozen), "cnnlab.edited_at": "2026-12-02 09:00"}
    found = judged_one(experiment("s", BETTER, claim, "New is better.", **tags))
    assert found.edited and "edited after the results were seen (2026-12-02 09:00)" in found.edited
    assert "New is worse." in found.edited and "worse by more than the margin" in found.edited
    unedited = {"cnnlab.frozen": json.dumps({**frozen, "hypothesis": "New is better.",
                                             "expect": claim})}  # fmt: skip
    assert judged_one(experiment("s", BETTER, claim, "New is better.", **unedited)).edited is None


def test_a_study_recorded_with_one_expectation_dict_still_reads():
    found = judged_one(experiment("s", BETTER, part("test_accuracy", "better"), "better"))
    assert len(found.parts) == 1 and found.verdict == "confirmed"


def test_a_step_may_select_its_variant_on_validation_accuracy():
    from cnnlab.reports import best_run, group_variants, selected_variant

    # Label smoothing raises the validation loss of "smooth" without making it worse: on loss
    # "plain" wins, on accuracy "smooth" does, and the study's best model is chosen on accuracy.
    runs = [run("s", "plain", seed, 0.90, 10.0) for seed in SEEDS]
    runs += [run("s", "smooth", seed, 0.91, 10.0) for seed in SEEDS]
    for r in runs:
        smooth = r.tags["cnnlab.variant"] == "smooth"
        r.metrics |= {
            "best_val_loss": 0.5 if smooth else 0.3,
            "best_val_accuracy": 0.91 if smooth else 0.90,
        }
    groups = group_variants(runs)
    assert selected_variant(groups) == "plain"
    assert selected_variant(groups, "val_accuracy") == "smooth"
    assert best_run(runs, "val_accuracy").tags["cnnlab.variant"] == "smooth"
    record = experiment("s", BETTER, [part("test_accuracy", "better", variant=None)], "x")
    record.tags["cnnlab.select"] = "val_accuracy"
    assert judged_one(record).parts[0].measured.startswith("new:")  # higher val accuracy
