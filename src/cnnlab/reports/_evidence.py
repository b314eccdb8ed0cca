"""Runs grouped by variant across seeds: noise bands, differences with intervals, verdicts.

    groups = group_variants(record.trained)            # {"batchnorm": [run, run, run], ...}
    band = Band.of(groups["batchnorm"], "test_accuracy")  # mean, sd, n
    diff = compare(groups["batchnorm"], reference_runs, "test_accuracy", record.trained)
    diff.verdict()       # "better" / "worse" / "inconclusive"
    diff.text()          # "+0.42 pts [+0.10, +0.74] (blocked, df 14)"
    judge(diff, "same", 0.01)   # "confirmed" / "refuted" / "inconclusive (...)"
    p_value(diff, "same", 0.01)  # one-sided; confirmed iff < 0.025; holm([p, ...]) for a family
    seeds_needed(diff, "same", 0.01)  # seeds per arm for 80% power at what was observed

A difference is the subject's mean minus the reference's, with a 95% interval that uses the
design: variants of one step run the same seeds, and a seed moves every variant alike (it fixes
the split's shuffling and the initial weights), so where the seeds match they are compared seed
by seed. Within a step whose variants x seeds table is complete, an additive variant + seed fit
pools the residual noise of every variant ("blocked"); else, for two groups with the same seeds,
per-seed differences ("paired"); else (seeds that differ) Welch's interval, which assumes
neither equal variances nor pairing. Two groups that share at least two seeds but not all (seeds
added to one of them for another question) are compared on the seeds they share, so that a
comparison already judged does not move when another adds seeds to one of its groups. Where
nothing is left to measure noise by (every seed gave the same value or the same difference),
there is no interval and no verdict: a zero-width interval would confirm any difference.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import NamedTuple

from cnnlab.reports import _stats
from cnnlab.reports._collect import VARIANT_TAG, RunRecord
from cnnlab.reports._stats import holm as holm  # public here, beside p_value


class Metric(NamedTuple):
    key: str  # the name the run logged it under
    sense: int  # +1 if higher is better, -1 if lower is
    source: str = "metrics"  # "metrics", or "params" for a value logged as a run parameter


# Metric names a study may name; metric_sense() admits any other logged metric given its sense.
METRICS: dict[str, Metric] = {
    "test_accuracy": Metric("test_accuracy", +1),
    "test_loss": Metric("test_loss", -1),
    "val_accuracy": Metric("best_val_accuracy", +1),
    "val_loss": Metric("best_val_loss", -1),
    "seconds": Metric("train_seconds", -1),  # wall time of training, all epochs
    "images_seen": Metric("images_seen", -1),  # training images processed, all epochs
    "total_params": Metric("arch.total_params", -1, "params"),
}
SENSES = {"higher": +1, "lower": -1}
# What a hypothesis may claim of the subject against its reference, in the metric's own sense
# of better (higher accuracy, lower loss), beyond a margin `min_difference` >= 0:
DIRECTIONS = {
    "better": "better by more than the margin",
    "worse": "worse by more than the margin",
    "same": "within the margin either way",
    "not_better": "not better by more than the margin",
    "not_worse": "not worse by more than the margin",
}
# Each direction as one-sided tests "s * (improvement - k * margin) > 0", as (s, k): the claim
# is confirmed when every one rejects its null hypothesis (two for "same": TOST).
_TESTS = {
    "better": [(+1, +1)],
    "worse": [(-1, -1)],
    "not_better": [(-1, +1)],
    "not_worse": [(+1, -1)],
    "same": [(+1, -1), (-1, +1)],
}
CONFIDENCE = 0.95


def metric_sense(name: str, sense: str | None = None) -> Metric:
    """Where a metric is read and which way is better: a METRICS entry, or any metric a run
    logged under `name` when the caller says whether "higher" or "lower" is better.

    metric_sense("test_accuracy")          # Metric("test_accuracy", +1)
    metric_sense("epoch_seconds", "lower")  # Metric("epoch_seconds", -1)
    """
    if sense is not None and sense not in SENSES:
        raise ValueError(f"sense: expected one of {', '.join(SENSES)}, got {sense!r}")
    if name in METRICS:
        if sense is not None and SENSES[sense] != METRICS[name].sense:
            raise ValueError(f"{name}: {sense} is not better for it")
        return METRICS[name]
    if sense is None:
        known = ", ".join(METRICS)
        raise KeyError(f"{name}: not one of {known}; for another logged metric give its sense")
    return Metric(name, SENSES[sense])


def read(metric: Metric, run: RunRecord) -> float | None:
    """The run's value of the metric, None when it did not log it."""
    if metric.source == "params":
        text = run.params.get(metric.key)
        return None if text is None else float(text)
    return run.metrics.get(metric.key)


def group_variants(runs: list[RunRecord]) -> dict[str, list[RunRecord]]:
    """Runs by their study variant, in first-seen order; a run outside a study is its own group."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(run.tags.get(VARIANT_TAG) or run.name, []).append(run)
    return groups


def selected_variant(groups: dict[str, list[RunRecord]], select: str = "val_loss") -> str | None:
    """The variant with the best mean of the step's selection measure (validation loss, or
    validation accuracy where the step says so): selection never looks at the test set."""
    sense = METRICS[select].sense
    bands = {name: Band.of(runs, select) for name, runs in groups.items()}
    scored = {name: sense * band.mean for name, band in bands.items() if band.n}
    return max(scored, key=scored.__getitem__, default=None)


@dataclass(frozen=True)
class Band:
    """Mean and sample standard deviation of one metric over a variant's seeds."""

    mean: float
    sd: float  # 0 with one run
    n: int

    @classmethod
    def of(cls, runs: list[RunRecord], metric: str, sense: str | None = None) -> Band:
        """`sense` only for a metric outside METRICS (see metric_sense)."""
        where = metric_sense(metric, sense)
        values = [v for v in (read(where, r) for r in runs) if v is not None]
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
    nothing varies: se == 0), the method that gave it and its standard error and df."""

    metric: str
    subject: Band
    reference: Band
    low: float | None
    high: float | None
    method: str = "Welch"  # "blocked by seed", "paired by seed" or "Welch"
    df: float | None = None
    se: float | None = None  # 0.0 when nothing varies
    sense: int | None = None  # +1 higher is better, -1 lower; None: METRICS[metric]'s
    level: float = _stats.LEVEL  # one-sided level of each bound: 0.025 for a 95% interval

    @property
    def value(self) -> float:
        return self.subject.mean - self.reference.mean

    @property
    def n(self) -> int:
        return min(self.subject.n, self.reference.n)

    @property
    def sign(self) -> int:
        return self.sense if self.sense is not None else METRICS[self.metric].sense

    def improvement(self) -> tuple[float, float] | None:
        """The interval turned so that positive always means better."""
        if self.low is None or self.high is None:
            return None
        return tuple(sorted((self.sign * self.low, self.sign * self.high)))  # type: ignore[return-value]

    def no_interval(self) -> str | None:
        """Why there is no interval, or None when there is one."""
        if self.n < 2:
            return "one seed on a side"
        if self.low is not None and self.high is not None:
            return None
        if self.subject.sd == self.reference.sd == 0 or self.method == "Welch":
            return "every seed gave the same value"
        if self.method == "paired by seed":
            return "every seed gave the same difference"
        return "the variant + seed fit leaves no residual variation"

    def verdict(self) -> str:
        """An exploratory row's verdict, in the words hypotheses use."""
        interval = self.improvement()
        if interval is None:
            return f"no verdict possible: {self.no_interval()}"
        if interval[0] > 0:
            return "better"
        if interval[1] < 0:
            return "worse"
        return "inconclusive"

    def text(self) -> str:
        percent = self.metric.endswith("accuracy")
        # Losses need four decimals; seconds, images and parameters read better with one.
        digits = 2 if percent else 4 if self.metric.endswith("loss") else 1
        scale, unit = (100, " pts") if percent else (1, "")
        value = f"{self.value * scale:+.{digits}f}{unit}"
        if self.low is None or self.high is None:
            return value
        low, high = f"{self.low * scale:+.{digits}f}", f"{self.high * scale:+.{digits}f}"
        method = self.method.split()[0]
        wider = "" if self.level == _stats.LEVEL else f", {1 - 2 * self.level:.1%} interval"
        return f"{value} [{low}, {high}] ({method}, df {round(self.df or 0, 1):g}{wider})"


def compare(
    subject: list[RunRecord],
    reference: list[RunRecord],
    metric: str,
    step_runs: list[RunRecord] | None = None,
    *,
    sense: str | None = None,
    level: float = _stats.LEVEL,
) -> Difference:
    """subject - reference with a 95% interval (each bound at one-sided `level`) by the
    strongest design the runs share.

    step_runs: every finished run of the step both groups belong to; with it, and a complete
    variants x seeds table, the comparison is blocked by seed over the whole step.
    """
    where = metric_sense(metric, sense)
    value = lambda r: read(where, r)  # noqa: E731
    shared = _stats.shared_seeds(subject, reference, value)
    subject, reference = _stats.on_seeds(subject, shared), _stats.on_seeds(reference, shared)
    step_runs = _stats.on_seeds(step_runs, shared) if step_runs else step_runs
    a, b = Band.of(subject, metric, sense), Band.of(reference, metric, sense)
    base = Difference(metric, a, b, None, None, sense=where.sense, level=level)
    if a.n < 2 or b.n < 2:
        return base
    found = _stats.design(subject, reference, value, step_runs)
    if found is None:
        found = ("Welch", *_stats.welch([(a.mean, a.sd, a.n), (b.mean, b.sd, b.n)]))
    method, se, df = found
    if se == 0:
        return Difference(metric, a, b, None, None, method, df, se, where.sense, level)
    half = _t_quantile(df, level) * se
    low, high = base.value - half, base.value + half
    return Difference(metric, a, b, low, high, method, df, se, where.sense, level)


def welch_interval(a: Band, b: Band) -> tuple[float, float]:
    """95% interval of mean(a) - mean(b) without assuming equal variances (Welch-Satterthwaite);
    at least one group must vary."""
    se, df = _stats.welch([(a.mean, a.sd, a.n), (b.mean, b.sd, b.n)])
    if se == 0:
        # Not "the difference is exact": seeds that all give one value say nothing about the
        # noise a rerun would see, and a zero-width interval would confirm any difference.
        raise ValueError("no spread in either group: a Welch interval needs some")
    half = _t_quantile(df) * se
    return a.mean - b.mean - half, a.mean - b.mean + half


def _t_quantile(df: float, level: float = _stats.LEVEL) -> float:
    from scipy.stats import t

    return float(t.ppf(1 - level, df))


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


def p_value(diff: Difference, direction: str, margin: float = 0.0) -> float | None:
    """One-sided p-value of the test whose rejection confirms the claim: below the difference's
    level (0.025 for a 95% interval) exactly when judge() says confirmed. "same" is two
    one-sided tests (TOST): the larger p. None without an interval."""
    effects = _effects(diff, direction, margin)
    if effects is None:
        return None
    se, df = diff.se or 0.0, diff.df or 0.0  # both set where _effects found an interval
    return max(_stats.one_sided_p(e / se, df) for e in effects)


def seeds_needed(
    diff: Difference, direction: str, margin: float = 0.0, power: float = 0.8, cap: int = 200
) -> int | None:
    """Seeds per arm for `power` to confirm the claim if the true difference and spread were
    those observed, under the same design; `cap` when more. None without an interval, or when
    the observed difference is on the wrong side of the claim (no number of seeds confirms it
    at that effect)."""
    effects = _effects(diff, direction, margin)
    if effects is None or min(effects) <= 0:
        return None
    level = diff.level  # a claim judged at a stricter level needs more seeds to confirm
    n, df, se = diff.n, diff.df or 0.0, diff.se or 0.0
    if diff.method == "Welch":
        # Planned as equal arms with the pooled sd and a pooled-variance df, as TTestIndPower.
        a, b = diff.subject, diff.reference
        pooled = math.sqrt(((a.n - 1) * a.sd**2 + (b.n - 1) * b.sd**2) / (a.n + b.n - 2))
        unit_se, df_of = pooled * math.sqrt(2), lambda k: 2 * k - 2
    else:
        # se * sqrt(n) is the sd of one seed's difference (paired), or residual sd * sqrt(2)
        # (blocked); a blocked step keeps its other variants, so df grows as (V-1)(n-1).
        variants_less_one = df / (n - 1)
        unit_se, df_of = se * math.sqrt(n), lambda k: variants_less_one * (k - 1)
    return _stats.seeds_for_power(effects, unit_se, df_of, power, cap, level)


def _effects(diff: Difference, direction: str, margin: float) -> list[float] | None:
    """Each one-sided test's distance from its null boundary, positive on the claim's side."""
    if diff.improvement() is None or not diff.se:
        return None
    improvement = diff.sign * diff.value
    return [s * (improvement - k * margin) for s, k in _TESTS[direction]]
