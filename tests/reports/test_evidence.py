"""Noise bands, intervals and verdicts, on hand-made runs (no training needed)."""

import math

import pytest
from scipy import stats

from cnnlab.reports import (
    DIRECTIONS,
    Band,
    compare,
    group_variants,
    judge,
    selected_variant,
)
from cnnlab.reports._collect import RunRecord


def run(variant: str, seed: int, acc: float, val_loss: float = 0.3) -> RunRecord:
    tags = {"cnnlab.variant": variant, "cnnlab.seed": str(seed)}
    metrics = {"test_accuracy": acc, "best_val_loss": val_loss, "test_loss": 1 - acc}
    return RunRecord(
        f"{variant}-{seed}", f"{variant} seed={seed}", "e", "FINISHED", 0, {}, metrics, tags
    )


def test_band_is_mean_and_sample_sd():
    band = Band.of([run("a", s, acc) for s, acc in enumerate([0.90, 0.91, 0.92])], "test_accuracy")
    assert band.n == 3 and math.isclose(band.mean, 0.91) and math.isclose(band.sd, 0.01)
    assert band.text(percent=True) == "91.00% ± 1.00% (n=3)"
    assert Band.of([run("a", 1, 0.5)], "test_accuracy").text(percent=True) == "50.00% (n=1)"
    assert Band.of([run("a", 1, 0.5)], "val_accuracy").n == 0  # not logged: no band


def test_welch_interval_matches_scipy():
    a = [0.901, 0.897, 0.905, 0.899]
    b = [0.890, 0.894, 0.881]
    diff = compare(
        [run("a", i, v) for i, v in enumerate(a)],
        [run("b", i, v) for i, v in enumerate(b)],
        "test_accuracy",
    )
    expected = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert math.isclose(diff.low, expected.low) and math.isclose(diff.high, expected.high)
    assert math.isclose(diff.value, sum(a) / 4 - sum(b) / 3)


def test_verdicts_follow_the_interval_and_the_metric_direction():
    good = [run("good", s, 0.90 + 0.001 * s) for s in range(3)]
    bad = [run("bad", s, 0.80 + 0.001 * s) for s in range(3)]
    noisy = [run("noisy", s, acc) for s, acc in enumerate([0.89, 0.91, 0.90])]
    assert compare(good, bad, "test_accuracy").verdict() == "better"
    assert compare(bad, good, "test_accuracy").verdict() == "worse"
    # test_loss is 1 - accuracy here: lower is better, so the good variant is still better.
    assert compare(good, bad, "test_loss").verdict() == "better"
    assert compare(noisy, good, "test_accuracy").verdict() == (
        "no difference detectable with 3 seeds"
    )
    assert compare(good[:1], bad, "test_accuracy").verdict() == "no verdict possible with one seed"


@pytest.mark.parametrize(
    "interval, direction, margin, verdict",
    [
        ((0.01, 0.03), "better", 0.0, "confirmed"),
        ((-0.03, -0.01), "better", 0.0, "refuted"),
        ((-0.01, 0.02), "better", 0.0, "inconclusive"),
        ((0.01, 0.03), "better", 0.02, "inconclusive"),
        ((-0.004, 0.006), "same", 0.01, "confirmed"),
        ((0.02, 0.03), "same", 0.01, "refuted"),
        ((-0.004, 0.02), "same", 0.01, "inconclusive"),
        ((-0.02, 0.004), "not_better", 0.005, "confirmed"),
        ((0.006, 0.02), "not_better", 0.005, "refuted"),
        ((-0.03, -0.02), "worse", 0.01, "confirmed"),
        ((0.01, 0.03), "worse", 0.01, "refuted"),
        ((-0.02, 0.0), "worse", 0.01, "inconclusive"),
        ((-0.004, 0.01), "not_worse", 0.005, "confirmed"),
        ((-0.03, -0.01), "not_worse", 0.005, "refuted"),
        ((-0.01, 0.01), "not_worse", 0.005, "inconclusive"),
    ],
)
def test_hypothesis_verdicts(interval, direction, margin, verdict):
    # Two groups whose Welch interval is exactly `interval`: one spread, one offset.
    centre, half = sum(interval) / 2, (interval[1] - interval[0]) / 2
    t = stats.t.ppf(0.975, 4)
    sd = half / t / math.sqrt(2 / 3)
    subject = [run("s", i, 0.9 + centre + d) for i, d in enumerate([-sd, 0, sd])]
    reference = [run("r", i, 0.9 + d) for i, d in enumerate([-sd, 0, sd])]
    diff = compare(subject, reference, "test_accuracy")
    assert math.isclose(diff.low, interval[0], abs_tol=1e-9)
    assert judge(diff, direction, margin).startswith(verdict)


@pytest.mark.parametrize("subject_acc", [0.91, 0.90], ids=["apart", "identical"])
@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy on a constant group
def test_groups_without_spread_give_no_interval_and_confirm_nothing(subject_acc):
    # Every seed gave the same value (the seed never reached the metric): nothing says how far a
    # rerun would move, so a zero-width interval would "confirm" any difference at all.
    subject = [run("s", i, subject_acc) for i in range(3)]
    reference = [run("r", i, 0.90) for i in range(3)]
    diff = compare(subject, reference, "test_accuracy")
    assert diff.low is None and diff.high is None
    assert math.isclose(diff.value, subject_acc - 0.90, abs_tol=1e-12)
    assert diff.verdict() == "no verdict possible: every seed gave the same value"
    for direction in DIRECTIONS:
        assert judge(diff, direction, 0.0) == (
            "inconclusive (every seed gave the same value: no interval)"
        ), direction
    # One group with spread is enough: Welch's interval then rests on that group's spread alone.
    noisy = [0.895, 0.905, 0.90]
    diff = compare(subject, [run("r", i, v) for i, v in enumerate(noisy)], "test_accuracy")
    expected = stats.ttest_ind([subject_acc] * 3, noisy, equal_var=False).confidence_interval()
    assert math.isclose(diff.low, expected.low) and math.isclose(diff.high, expected.high)


def test_groups_and_selection_on_validation_never_test():
    runs = [
        run("a", 1, 0.99, val_loss=0.5),
        run("b", 1, 0.80, val_loss=0.2),
        run("a", 2, 0.98, 0.4),
    ]
    groups = group_variants(runs)
    assert list(groups) == ["a", "b"] and len(groups["a"]) == 2
    assert selected_variant(groups) == "b"  # lower validation loss, despite lower test accuracy
