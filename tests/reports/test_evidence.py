"""Noise bands, intervals and verdicts, on hand-made runs (no training needed)."""

import gc
import math
import statistics

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower

from cnnlab.reports import (
    DIRECTIONS,
    Band,
    compare,
    group_variants,
    judge,
    selected_variant,
)
from cnnlab.reports._collect import RunRecord
from cnnlab.reports._evidence import holm, metric_sense, p_value, seeds_needed, welch_interval


def run(
    variant: str, seed: int, acc: float, val_loss: float = 0.3, params=None, **metrics
) -> RunRecord:
    tags = {"cnnlab.variant": variant, "cnnlab.seed": str(seed)}
    metrics |= {"test_accuracy": acc, "best_val_loss": val_loss, "test_loss": 1 - acc}
    return RunRecord(
        f"{variant}-{seed}",
        f"{variant} seed={seed}",
        "e",
        "FINISHED",
        0,
        params or {},
        metrics,
        tags,
    )


def step(table: dict[str, list[float]], seeds=(42, 43, 44, 45, 46)) -> list[RunRecord]:
    """A study step's runs: each variant's accuracies, seed by seed."""
    return [run(name, seed, acc) for name, accs in table.items() for seed, acc in zip(seeds, accs)]


def variant(runs: list[RunRecord], name: str) -> list[RunRecord]:
    return group_variants(runs)[name]


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
        [run("b", 10 + i, v) for i, v in enumerate(b)],  # other seeds: nothing to pair
        "test_accuracy",
    )
    expected = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert math.isclose(diff.low, expected.low) and math.isclose(diff.high, expected.high)
    assert math.isclose(diff.value, sum(a) / 4 - sum(b) / 3)
    assert diff.method == "Welch" and diff.text() == "+1.22 pts [-0.18, +2.61] (Welch, df 2.8)"


def test_groups_sharing_some_seeds_are_compared_on_those_at_the_level_asked():
    # Seeds 45 and 46 were added to the subject for another question: this comparison keeps to
    # the three seeds both ran, paired, so a verdict already given does not move.
    a = [0.901, 0.897, 0.905, 0.899, 0.930]
    b = [0.890, 0.894, 0.881]
    subject = [run("a", 42 + i, v) for i, v in enumerate(a)]
    reference = [run("b", 42 + i, v) for i, v in enumerate(b)]
    diff = compare(subject, reference, "test_accuracy", level=0.005)
    expected = stats.ttest_rel(a[:3], b).confidence_interval(0.99)
    assert diff.method == "paired by seed" and diff.n == 3
    assert math.isclose(diff.low, expected.low) and math.isclose(diff.high, expected.high)
    assert diff.text().endswith("(paired, df 2, 99.0% interval)")
    # One seed in common is not a pairing: Welch over every run.
    lone = [run("b", 46 + i, v) for i, v in enumerate(b)]
    assert compare(subject, lone, "test_accuracy").method == "Welch"


def test_verdicts_follow_the_interval_and_the_metric_direction():
    good = [run("good", s, 0.90 + 0.001 * s) for s in range(3)]
    bad = [run("bad", s, 0.80 + 0.002 * s) for s in range(3)]
    noisy = [run("noisy", s, acc) for s, acc in enumerate([0.89, 0.91, 0.90])]
    assert compare(good, bad, "test_accuracy").verdict() == "better"
    assert compare(bad, good, "test_accuracy").verdict() == "worse"
    # test_loss is 1 - accuracy here: lower is better, so the good variant is still better.
    assert compare(good, bad, "test_loss").verdict() == "better"
    # One vocabulary with the hypotheses: never "no difference", which reads as "the same".
    assert compare(noisy, good, "test_accuracy").verdict() == "inconclusive"
    assert compare(good[:1], bad, "test_accuracy").verdict() == (
        "no verdict possible: one seed on a side"
    )


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
    reference = [run("r", 10 + i, 0.9 + d) for i, d in enumerate([-sd, 0, sd])]
    diff = compare(subject, reference, "test_accuracy")
    assert diff.method == "Welch" and math.isclose(diff.low, interval[0], abs_tol=1e-9)
    p = p_value(diff, direction, margin)
    assert (p < 0.025) == judge(diff, direction, margin).startswith("confirmed")
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
    assert p_value(diff, "better") is None and seeds_needed(diff, "better") is None
    # One group with spread is enough: Welch's interval then rests on that group's spread alone.
    noisy = [0.895, 0.905, 0.90]
    diff = compare(subject, [run("r", 10 + i, v) for i, v in enumerate(noisy)], "test_accuracy")
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


# --- Comparisons that use the design ---------------------------------------------------------

RNG = np.random.default_rng(23)
SEED_EFFECTS = RNG.normal(0, 0.01, 5)  # a seed moves every variant alike (split, init)
NOISY_STEP = {
    f"v{i}": list(0.9 + 0.004 * i + SEED_EFFECTS + RNG.normal(0, 0.003, 5)) for i in range(4)
}


def test_blocked_interval_matches_an_ols_fit_of_variant_plus_seed():
    runs = step(NOISY_STEP)
    diff = compare(variant(runs, "v2"), variant(runs, "v1"), "test_accuracy", runs)
    data = pd.DataFrame(
        {"y": [r.metrics["test_accuracy"] for r in runs]}
        | {k: [r.tags[f"cnnlab.{k}"] for r in runs] for k in ("variant", "seed")}
    )
    fit = smf.ols("y ~ C(variant) + C(seed)", data).fit()
    contrast = fit.t_test("C(variant)[T.v2] - C(variant)[T.v1] = 0")
    ((low, high),) = contrast.conf_int(alpha=0.05)
    assert diff.method == "blocked by seed" and diff.df == fit.df_resid == 12
    assert math.isclose(diff.value, float(contrast.effect[0]), abs_tol=1e-12)
    assert math.isclose(diff.low, low, abs_tol=1e-9) and math.isclose(diff.high, high, abs_tol=1e-9)
    assert math.isclose(diff.se, float(contrast.sd[0, 0]), abs_tol=1e-12)
    assert diff.text().endswith("(blocked, df 12)")


def test_paired_interval_matches_scipy_and_blocked_on_two_variants_is_paired():
    runs = step({k: NOISY_STEP[k] for k in ("v0", "v3")})
    a, b = variant(runs, "v3"), variant(runs, "v0")
    expected = stats.ttest_rel(NOISY_STEP["v3"], NOISY_STEP["v0"]).confidence_interval()
    for diff in compare(a, b, "test_accuracy"), compare(a, b, "test_accuracy", runs):
        assert math.isclose(diff.low, expected.low, abs_tol=1e-12), diff.method
        assert math.isclose(diff.high, expected.high, abs_tol=1e-12) and diff.df == 4
    assert compare(a, b, "test_accuracy").method == "paired by seed"
    assert compare(a, b, "test_accuracy").text().endswith("(paired, df 4)")


def test_the_design_falls_back_where_seeds_do_not_match():
    runs = step(NOISY_STEP) + [run("partial", 42, 0.9), run("partial", 43, 0.91)]
    v1, v2 = variant(runs, "v1"), variant(runs, "v2")
    # The incomplete variant leaves the table; the four complete ones still block.
    assert compare(v2, v1, "test_accuracy", runs).df == 12
    outside = [run("other", seed, acc) for seed, acc in zip(range(42, 47), NOISY_STEP["v0"])]
    assert compare(v2, outside, "test_accuracy", runs).method == "paired by seed"
    # Seed 46 missing from one group: both keep to the four seeds they share, and the step's
    # table on those four seeds still blocks (four variants x four seeds: df 9).
    cut = compare(v2, v1[:4], "test_accuracy", runs)
    assert (cut.method, cut.df, cut.n) == ("blocked by seed", 9, 4)
    unpaired = [run("v1", seed, 0.9) for seed in (50, 51, 52)]
    assert compare(v2, unpaired, "test_accuracy", runs).method == "Welch"  # no seed shared
    repeated = v1[:4] + [run("v1", 42, 0.9)]  # two runs of seed 42: no partner for each
    assert compare(v2, repeated, "test_accuracy").method == "Welch"


# --- p-values, Holm, seeds needed ------------------------------------------------------------

# Each direction as scipy's one-sided alternative on subject - (reference + k * margin).
SCIPY_TESTS = {
    "better": [("greater", +1)],
    "worse": [("less", -1)],
    "not_better": [("less", +1)],
    "not_worse": [("greater", -1)],
    "same": [("greater", -1), ("less", +1)],
}
A = [0.905, 0.897, 0.912, 0.899]
B = [0.894, 0.893, 0.885, 0.899]


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.004])
def test_p_values_match_scipy_for_each_direction(direction, margin):
    unpaired = compare([run("a", i, v) for i, v in enumerate(A)], step({"b": B}), "test_accuracy")
    paired = compare(step({"a": A}), step({"b": B}), "test_accuracy")
    welch = [
        stats.ttest_ind(A, np.add(B, k * margin), equal_var=False, alternative=alt).pvalue
        for alt, k in SCIPY_TESTS[direction]
    ]
    by_seed = [
        stats.ttest_1samp(np.subtract(A, B) - k * margin, 0.0, alternative=alt).pvalue
        for alt, k in SCIPY_TESTS[direction]
    ]
    assert math.isclose(p_value(unpaired, direction, margin), max(welch), rel_tol=1e-9)
    assert math.isclose(p_value(paired, direction, margin), max(by_seed), rel_tol=1e-9)
    # Lower is better for the loss (1 - accuracy here): the same claim, the same p.
    loss = compare(step({"a": A}), step({"b": B}), "test_loss")
    assert math.isclose(p_value(loss, direction, margin), max(by_seed), rel_tol=1e-9)
    for diff in unpaired, paired:
        confirmed = judge(diff, direction, margin) == "confirmed"
        assert (p_value(diff, direction, margin) < 0.025) == confirmed


def _holm_family(rng: np.random.Generator) -> list[float | None]:
    """Six p-values near the 0.025 line, about one in five missing (a part with no interval)."""
    return [None if rng.random() < 0.2 else float(rng.uniform(0, 0.03)) for _ in range(6)]


def test_holm_matches_statsmodels():
    rng = np.random.default_rng(5)
    # multipletests' Holm calls gc.collect(), which walks every object of the session (torch,
    # MLflow): up to a second a call. Frozen, those objects are left out of the walk.
    gc.freeze()
    try:
        for _ in range(40):  # families where all, some or none stay confirmed
            pvalues = _holm_family(rng)
            ours = holm(pvalues)
            # A hypothesis without a p-value counts in the family as one never rejected.
            theirs = multipletests([1.0 if p is None else p for p in pvalues], 0.025, "holm")[0]
            assert ours == [None if p is None else bool(t) for p, t in zip(pvalues, theirs)]
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("offset, margin", [(0.004, 0.0), (0.008, 0.002), (0.002, 0.0)])
def test_seeds_needed_matches_statsmodels_power(offset, margin):
    b = [0.894, 0.901, 0.897, 0.889]
    a = [v + offset + d for v, d in zip(b, [0.003, -0.004, 0.001, -0.002])]
    unpaired = compare([run("a", i, v) for i, v in enumerate(a)], step({"b": b}), "test_accuracy")
    pooled = math.sqrt((statistics.variance(a) + statistics.variance(b)) / 2)
    effect = (statistics.fmean(a) - statistics.fmean(b) - margin) / pooled
    independent = TTestIndPower().solve_power(effect, alpha=0.025, power=0.8, alternative="larger")
    assert abs(seeds_needed(unpaired, "better", margin) - math.ceil(independent)) <= 1
    paired = compare(step({"a": a}), step({"b": b}), "test_accuracy")
    d = np.subtract(a, b)
    effect = (d.mean() - margin) / d.std(ddof=1)
    one_sample = TTestPower().solve_power(effect, alpha=0.025, power=0.8, alternative="larger")
    assert abs(seeds_needed(paired, "better", margin) - math.ceil(one_sample)) <= 1
    assert seeds_needed(paired, "worse", margin) is None  # the observed effect points the other way
    assert seeds_needed(paired, "better", margin, cap=3) == 3


# --- Planted effects -------------------------------------------------------------------------


def test_a_truly_better_variant_is_confirmed_by_blocking_where_welch_cannot_tell():
    seeds = [0.010, -0.012, 0.003, -0.001]  # seed effects larger than the gain
    noise = [
        [0.001, -0.001, 0.0, 0.0005],
        [-0.0005, 0.001, -0.001, 0.0],
        [0.0, 0.0005, 0.001, -0.001],
    ]
    gains = {"narrow": 0.0, "wide": 0.015, "deep": 0.002}
    table = {
        k: [0.9 + g + s + e for s, e in zip(seeds, noise[i])]
        for i, (k, g) in enumerate(gains.items())
    }
    runs = step(table, seeds=(42, 43, 44, 45))
    wide, narrow = variant(runs, "wide"), variant(runs, "narrow")
    diff = compare(wide, narrow, "test_accuracy", runs)
    assert diff.method == "blocked by seed" and judge(diff, "better") == "confirmed"
    assert diff.verdict() == "better" and p_value(diff, "better") < 0.025
    low, high = welch_interval(Band.of(wide, "test_accuracy"), Band.of(narrow, "test_accuracy"))
    assert low < 0 < high  # unpaired, the seed effects swamp the gain


def test_an_identical_pair_is_inconclusive_and_says_how_many_seeds_would_decide():
    same = [0.902, 0.895, 0.899]
    runs = step({"a": [0.898, 0.899, 0.904], "b": same}, seeds=(42, 43, 44))
    diff = compare(variant(runs, "a"), variant(runs, "b"), "test_accuracy", runs)
    assert judge(diff, "same", 0.005).startswith("inconclusive")
    assert diff.verdict() == "inconclusive"
    needed = seeds_needed(diff, "same", 0.005)
    assert needed is not None and 3 < needed < 200
    assert seeds_needed(diff, "same", 0.0) is None  # "exactly the same" is never confirmed


def test_zero_spread_after_blocking_is_inconclusive():
    # Every variant moves with the seed by the same amount: nothing is left to measure noise by.
    seeds = [0.01, -0.02, 0.005]
    runs = step(
        {k: [0.9 + g + s for s in seeds] for k, g in (("a", 0.01), ("b", 0.0), ("c", 0.003))}
    )
    diff = compare(variant(runs, "a"), variant(runs, "b"), "test_accuracy", runs)
    assert diff.low is None and diff.se == 0 and diff.subject.sd > 0
    assert (
        diff.verdict() == "no verdict possible: the variant + seed fit leaves no residual variation"
    )
    assert judge(diff, "better").startswith("inconclusive") and p_value(diff, "better") is None
    assert seeds_needed(diff, "better") is None


# --- Metrics beyond accuracy and loss --------------------------------------------------------


def test_claims_may_name_time_images_parameters_or_any_logged_metric():
    fast = [
        run("fast", s, 0.9, train_seconds=t, images_seen=1000, params={"arch.total_params": "5e4"})
        for s, t in zip(range(3), [10.0, 10.5, 9.8])
    ]
    slow = [
        run("slow", 10 + s, 0.9, train_seconds=t, epoch_seconds=t / 2)
        for s, t in enumerate([14.0, 14.7, 13.9])
    ]
    assert Band.of(fast, "total_params").mean == 50000 and Band.of(fast, "images_seen").n == 3
    assert compare(fast, slow, "seconds").verdict() == "better"  # less time is better
    assert Band.of(slow, "epoch_seconds", sense="lower").n == 3
    with pytest.raises(KeyError, match="epoch_seconds"):
        metric_sense("epoch_seconds")
    with pytest.raises(ValueError, match="sideways"):
        metric_sense("epoch_seconds", "sideways")
    assert metric_sense("epoch_seconds", "lower") == ("epoch_seconds", -1, "metrics")
