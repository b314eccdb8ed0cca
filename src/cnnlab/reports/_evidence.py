"""Runs grouped by variant across seeds: noise bands, differences with intervals, verdicts.

    groups = group_variants(record.trained)            # {"batchnorm": [run, run, run], ...}
    band = Band.of(groups["batchnorm"], "test_accuracy")  # mean, sd, n
    diff = compare(groups["batchnorm"], reference_runs, "test_accuracy")
    diff.verdict()       # "better" / "worse" / "no difference detectable with 3 seeds"
    judge(diff, "same", 0.01)   # "confirmed" / "refuted" / "inconclusive"

A difference is the subject's mean minus the reference's, with a 95% Welch interval: the two
groups may have different sizes and spreads (a variant of another step, another architecture),
so neither equal variances nor pairing by seed is assumed. Two groups whose seeds all gave the
same value have no spread to judge a difference by (the seed did not reach the metric), so they
get no interval and no verdict.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from cnnlab.reports._collect import VARIANT_TAG, RunRecord

# Metric names a study may name -> (the run metric holding it, +1 if higher is better).
METRICS: dict[str, tuple[str, int]] = {
    "test_accuracy": ("test_accuracy", +1),
    "test_loss": ("test_loss", -1),
    "val_accuracy": ("best_val_accuracy", +1),
    "val_loss": ("best_val_loss", -1),
}
# What a hypothesis may claim of the subject against its reference, in the metric's own sense
# of better (higher accuracy, lower loss), beyond a margin `min_difference` >= 0:
DIRECTIONS = {
    "better": "better by more than the margin",
    "worse": "worse by more than the margin",
    "same": "within the margin either way",
    "not_better": "not better by more than the margin",
    "not_worse": "not worse by more than the margin",
}
CONFIDENCE = 0.95


def group_variants(runs: list[RunRecord]) -> dict[str, list[RunRecord]]:
    """Runs by their study variant, in first-seen order; a run outside a study is its own group."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(run.tags.get(VARIANT_TAG) or run.name, []).append(run)
    return groups


def selected_variant(groups: dict[str, list[RunRecord]]) -> str | None:
    """The variant with the lowest mean validation loss: selection never looks at the test set."""
    scored = {
        name: Band.of(runs, "val_loss").mean
        for name, runs in groups.items()
        if Band.of(runs, "val_loss").n
    }
    return min(scored, key=scored.__getitem__, default=None)


@dataclass(frozen=True)
class Band:
    """Mean and sample standard deviation of one metric over a variant's seeds."""

    mean: float
    sd: float  # 0 with one run
    n: int

    @classmethod
    def of(cls, runs: list[RunRecord], metric: str) -> Band:
        key = METRICS[metric][0]
        values = [r.metrics[key] for r in runs if key in r.metrics]
        if not values:
            return cls(math.nan, math.nan, 0)
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(statistics.fmean(values), sd, len(values))

    def text(self, percent: bool) -> str:
        if not self.n:
            return "-"
        scale, unit, digits = (100, "%", 2) if percent else (1, "", 4)
        mean, sd = f"{self.mean * scale:.{digits}f}", f"{self.sd * scale:.{digits}f}"
        return f"{mean}{unit} ± {sd}{unit} (n={self.n})" if self.n > 1 else f"{mean}{unit} (n=1)"


@dataclass(frozen=True)
class Difference:
    """subject - reference for one metric, with its 95% interval (None when n < 2 on a side or
    neither side varies across its seeds)."""

    metric: str
    subject: Band
    reference: Band
    low: float | None
    high: float | None

    @property
    def value(self) -> float:
        return self.subject.mean - self.reference.mean

    @property
    def n(self) -> int:
        return min(self.subject.n, self.reference.n)

    def improvement(self) -> tuple[float, float] | None:
        """The interval turned so that positive always means better."""
        if self.low is None or self.high is None:
            return None
        sign = METRICS[self.metric][1]
        return tuple(sorted((sign * self.low, sign * self.high)))  # type: ignore[return-value]

    def no_interval(self) -> str | None:
        """Why there is no interval, or None when there is one."""
        if self.n < 2:
            return "one seed on a side"
        if self.low is None or self.high is None:
            return "every seed gave the same value"
        return None

    def verdict(self) -> str:
        interval = self.improvement()
        if interval is None:
            if self.n < 2:
                return "no verdict possible with one seed"
            return f"no verdict possible: {self.no_interval()}"
        if interval[0] > 0:
            return "better"
        if interval[1] < 0:
            return "worse"
        return f"no difference detectable with {self.n} seeds"

    def text(self) -> str:
        percent = self.metric.endswith("accuracy")
        scale, unit, digits = (100, " pts", 2) if percent else (1, "", 4)
        value = f"{self.value * scale:+.{digits}f}{unit}"
        if self.low is None or self.high is None:
            return value
        low, high = f"{self.low * scale:+.{digits}f}", f"{self.high * scale:+.{digits}f}"
        return f"{value} [{low}, {high}]"


def compare(subject: list[RunRecord], reference: list[RunRecord], metric: str) -> Difference:
    a, b = Band.of(subject, metric), Band.of(reference, metric)
    if a.n < 2 or b.n < 2 or a.sd == b.sd == 0:
        return Difference(metric, a, b, None, None)
    low, high = welch_interval(a, b)
    return Difference(metric, a, b, low, high)


def welch_interval(a: Band, b: Band) -> tuple[float, float]:
    """95% interval of mean(a) - mean(b) without assuming equal variances (Welch-Satterthwaite);
    at least one group must vary."""
    from scipy.stats import t

    va, vb = a.sd**2 / a.n, b.sd**2 / b.n
    diff = a.mean - b.mean
    if va + vb == 0:
        # Not "the difference is exact": seeds that all give one value say nothing about the
        # noise a rerun would see, and a zero-width interval would confirm any difference.
        raise ValueError("no spread in either group: a Welch interval needs some")
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = float(t.ppf(0.5 + CONFIDENCE / 2, df)) * math.sqrt(va + vb)
    return diff - half, diff + half


def judge(diff: Difference, direction: str, margin: float = 0.0) -> str:
    """A hypothesis' verdict: confirmed or refuted when the interval says so, else inconclusive."""
    interval = diff.improvement()
    if interval is None:
        return f"inconclusive ({diff.no_interval()}: no interval)"
    low, high = interval
    confirmed, refuted = {
        "better": (low > margin, high < margin),
        "worse": (high < -margin, low > -margin),
        "same": (-margin <= low and high <= margin, low > margin or high < -margin),
        "not_better": (high <= margin, low > margin),
        "not_worse": (low >= -margin, high < -margin),
    }[direction]
    if confirmed:
        return "confirmed"
    return "refuted" if refuted else "inconclusive (the interval straddles the claim)"
