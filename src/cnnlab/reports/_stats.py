"""The numbers behind a Difference: which design two groups of runs share, the standard error
each design gives, one-sided p-values, Holm's correction and seeds needed for power.

Plain numbers in and out, so every function here can be checked against scipy or statsmodels;
reports/_evidence.py turns runs into these inputs and the results into verdicts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

import numpy as np

from cnnlab.reports._collect import SEED_TAG, VARIANT_TAG, RunRecord

LEVEL = 0.025  # one-sided level of each bound of a 95% interval: confirmed iff p < LEVEL
# A spread this small next to the values is float rounding of an exact pattern, not seed noise.
_ROUNDING = 1e-12

Read = Callable[[RunRecord], float | None]  # a run's value of the compared metric, if logged


def design(
    subject: list[RunRecord], reference: list[RunRecord], read: Read, step: list[RunRecord] | None
) -> tuple[str, float, float] | None:
    """(method, se, df) of subject mean - reference mean by seed, or None when the two groups
    do not share one run per seed (>= 2 seeds): then only Welch's unpaired interval applies."""
    a, b = by_seed(subject, read), by_seed(reference, read)
    if a is None or b is None or a.keys() != b.keys() or len(a) < 2:
        return None
    table = _step_table(subject, reference, read, step) if step else None
    if table is not None:
        return ("blocked by seed", *blocked(table, _variant(subject), _variant(reference)))
    return ("paired by seed", *paired([a[s] - b[s] for s in a]))


def shared_seeds(subject: list[RunRecord], reference: list[RunRecord], read: Read) -> set | None:
    """The seeds two groups share, when at least two but not all of either's (seeds added to
    one group for another comparison): the comparison keeps to them. Else None."""
    a, b = by_seed(subject, read), by_seed(reference, read)
    if a is None or b is None or a.keys() == b.keys():
        return None
    shared = a.keys() & b.keys()
    return set(shared) if len(shared) >= 2 else None


def on_seeds(runs: list[RunRecord], seeds: set | None) -> list[RunRecord]:
    """The runs of those seeds; all of them when `seeds` is None."""
    return runs if seeds is None else [r for r in runs if r.tags.get(SEED_TAG) in seeds]


def by_seed(runs: list[RunRecord], read: Read) -> dict[str, float] | None:
    """{seed: value} of runs that logged the metric; None when a seed is missing or repeated
    (two runs of one seed cannot both be that seed's partner)."""
    values = {}
    for run in runs:
        value, seed = read(run), run.tags.get(SEED_TAG)
        if value is None:
            continue
        if seed is None or seed in values:
            return None
        values[seed] = value
    return values


def _variant(runs: list[RunRecord]) -> str | None:
    names = {r.tags.get(VARIANT_TAG) for r in runs}
    return names.pop() if len(names) == 1 else None


def _step_table(
    subject: list[RunRecord], reference: list[RunRecord], read: Read, step: list[RunRecord]
) -> dict[str, dict[str, float]] | None:
    """The step's complete variants x seeds table on the compared pair's seeds, or None when
    either group is not exactly one of the step's variants."""
    variants: dict[str | None, list[RunRecord]] = {}
    for run in step:
        variants.setdefault(run.tags.get(VARIANT_TAG), []).append(run)
    for group in (subject, reference):
        name = _variant(group)
        ids = {r.run_id for r in variants.get(name, [])} if name else set()
        if not ids or ids != {r.run_id for r in group}:
            return None
    if _variant(subject) == _variant(reference):
        return None
    seeds = by_seed(subject, read).keys()  # type: ignore[union-attr]
    # Variants with other seeds (fewer, or rounds added later) would leave holes in the table.
    table = {name: by_seed(runs, read) for name, runs in variants.items() if name}
    return {name: row for name, row in table.items() if row is not None and row.keys() == seeds}


def blocked(table: dict[str, dict[str, float]], a: str, b: str) -> tuple[float, float]:
    """(se, df) of mean(a) - mean(b) in the additive fit y = mean + variant + seed over a
    complete table: seed effects shared by every variant cancel, the residual is the noise."""
    seeds = list(table[a])
    y = np.array([[row[s] for s in seeds] for row in table.values()])
    residual = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
    df = (y.shape[0] - 1) * (y.shape[1] - 1)
    s = math.sqrt(float((residual**2).sum()) / df)
    return _unless_rounding(s, y) * math.sqrt(2 / len(seeds)), float(df)


def paired(differences: list[float]) -> tuple[float, float]:
    """(se, df) of the mean of per-seed differences."""
    sd = _unless_rounding(statistics.stdev(differences), np.array(differences))
    return sd / math.sqrt(len(differences)), float(len(differences) - 1)


def welch(mean_sd_n: list[tuple[float, float, int]]) -> tuple[float, float]:
    """(se, df) of the difference of two means without assuming equal variances
    (Welch-Satterthwaite); se 0 and df nan when neither group varies."""
    (_, sa, na), (_, sb, nb) = mean_sd_n
    va, vb = sa**2 / na, sb**2 / nb
    if va + vb == 0:
        return 0.0, math.nan
    return math.sqrt(va + vb), (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))


def _unless_rounding(spread: float, values: np.ndarray) -> float:
    return 0.0 if spread <= _ROUNDING * max(1.0, float(np.abs(values).max())) else spread


def one_sided_p(t_value: float, df: float) -> float:
    """P(T >= t) for Student's t with df degrees of freedom."""
    from scipy.stats import t

    return float(t.sf(t_value, df))


def holm(pvalues: list[float | None], alpha: float = LEVEL) -> list[bool | None]:
    """Which hypotheses stay confirmed under Holm's step-down at family-wise level alpha.

    A hypothesis without a p-value (no interval) stays None but still counts in the family
    size: it was asked, and leaving it out would make the others' thresholds laxer.
    """
    m = len(pvalues)
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    confirmed: list[bool | None] = [None if p is None else False for p in pvalues]
    for rank, (p, i) in enumerate(order):
        if not p < alpha / (m - rank):  # strict, as a single test confirms iff p < alpha
            break
        confirmed[i] = True
    return confirmed


def seeds_for_power(
    effects: list[float],
    unit_se: float,
    df_of: Callable[[np.ndarray], np.ndarray],
    power: float,
    cap: int,
    level: float = LEVEL,
) -> int:
    """Smallest n (seeds per arm, 2..cap) at which every one-sided test "effect > 0" (each with
    se = unit_se / sqrt(n) and df_of(n) degrees of freedom) rejects at `level` with `power`.

    Exact noncentral t for each test, as statsmodels' TTestPower does. For two tests together
    (an equivalence claim) power is taken as P1 + P2 - 1: exact with a known variance, a slight
    underestimate with an estimated one (the two tests share it), so never too few seeds.
    """
    from scipy.stats import nct, t

    n = np.arange(2, cap + 1)
    df = df_of(n)
    critical = t.ppf(1 - level, df)
    each = [nct.sf(critical, df, effect * np.sqrt(n) / unit_se) for effect in effects]
    enough = np.nonzero(sum(each) - (len(effects) - 1) >= power)[0]
    return int(n[enough[0]]) if enough.size else cap
