"""Hypotheses judged whole: every part of a claim, Holm's correction across the study, the seeds
an open question would take, and expectations edited after their results were seen.

    judged = judge_hypotheses(records, lookup)   # one Judged per step with a hypothesis
    table = hypotheses_table(judged)             # one row per part of each claim

A hypothesis is confirmed only when every part is (an intersection-union test: its p-value is
the largest of its parts'), refuted when any part is, and inconclusive otherwise.

A step judged sequentially (`cnnlab study --until-decided`, which adds seeds while its
hypothesis is open) records how many looks it planned, K; each look is judged at one-sided level
0.025 / K (Bonferroni over the looks), so the chance that any of them falsely confirms stays at
most 0.025 however the looks depend on each other, and its p-value enters Holm's correction
multiplied by K.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from cnnlab.reports._collect import ExperimentRecord, RunRecord, selection
from cnnlab.reports._document import Section, Table
from cnnlab.reports._evidence import (
    DIRECTIONS,
    compare,
    group_variants,
    holm,
    judge,
    p_value,
    seeds_needed,
    selected_variant,
)
from cnnlab.reports._stats import LEVEL
from cnnlab.reports._verdicts import QUICK_VERDICT, Lookup, is_quick, target_variant
from cnnlab.tracking.tags import (
    ADDED_TAG,
    EDITED_TAG,
    EXPECT_TAG,
    FROZEN_TAG,
    HYPOTHESIS_TAG,
    LOOKS_TAG,
    SEED_TAG,
    ExpectPart,
    Reference,
    parse_expect,
)

POWER = 0.8  # the chance of deciding that the seeds-needed figure is for
SEEDS_CAP = 200  # beyond this many seeds per arm the figure says "or more"
MEANINGS = (
    "**confirmed**: for every part of the claim, the whole interval lies on the claimed "
    "side of its margin; **refuted**: for some part it lies wholly on the other side; "
    "**inconclusive**: neither, so the seeds run cannot decide the question. Inconclusive is "
    "not evidence of no effect. The intervals cover the noise between seeds on one test set, "
    "not another test set or another dataset."
)


@dataclass(frozen=True)
class Arm:
    """One side of a part's comparison: a variant of a step, and the seeds it ran."""

    experiment: str
    variant: str
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class Part:
    claim: str  # the expectation in words
    measured: str  # estimate, interval, method, n
    verdict: str  # confirmed / refuted / inconclusive (...)
    p: float | None  # one-sided p-value of confirming this part
    needed: str  # for an open part: the seeds per arm it would take
    arms: tuple[Arm, Arm] | None = None  # (subject, reference), when both were found


@dataclass(frozen=True)
class Judged:
    step: str
    hypothesis: str
    parts: list[Part]
    verdict: str
    p: float | None
    edited: str | None  # how the expectation changed after its results, when it did
    holm: str = ""  # the verdict under Holm's correction across the study's hypotheses
    looks: int = 1  # planned looks of a sequential step: each judged at LEVEL / looks
    experiment: str = ""  # the step's experiment


def judge_hypotheses(records: list[ExperimentRecord], lookup: Lookup) -> list[Judged]:
    judged = [_judged(r, lookup) for r in records if r.tags.get(HYPOTHESIS_TAG)]
    return _with_holm(judged)


def _judged(record: ExperimentRecord, lookup: Lookup) -> Judged:
    step, text = record.name.rsplit("/", 1)[-1], record.tags[HYPOTHESIS_TAG]
    specs = parse_expect(record.tags.get(EXPECT_TAG))
    edited = _edited(record, text, specs)
    looks = planned_looks(record)
    if specs is None:
        verdict = "(no machine-checkable expectation)"
        return Judged(step, text, [], verdict, None, edited, "", looks, record.name)
    parts = [_part(record, spec, lookup, LEVEL / looks) for spec in specs]
    verdicts = [p.verdict.split(" ")[0] for p in parts]
    if is_quick(record):
        verdict = QUICK_VERDICT
    elif "refuted" in verdicts:
        verdict = "refuted"
    elif all(v == "confirmed" for v in verdicts):
        verdict = "confirmed"
    else:
        verdict = "inconclusive"
    ps = [p.p for p in parts]
    p = None if None in ps or is_quick(record) else max(ps)
    return Judged(step, text, parts, verdict, p, edited, "", looks, record.name)


def planned_looks(record: ExperimentRecord) -> int:
    """How many looks a step judged sequentially planned (1: judged once)."""
    plan = json.loads(record.tags.get(LOOKS_TAG, "null")) or {}
    return max(1, int(plan.get("looks", 1)))


def _part(record: ExperimentRecord, spec: ExpectPart, lookup: Lookup, level: float) -> Part:
    claim = _claim(spec)
    groups = group_variants(record.trained)
    name = spec.variant or selected_variant(groups, selection(record))
    reference = None if spec.reference is None else target_variant(spec.reference, lookup)
    if name not in groups or reference is None:
        return Part(claim, "-", "inconclusive (no finished runs to compare)", None, "")
    arms = (_arm(record.name, name, groups[name]), _arm(reference[0].name, *reference[1:]))
    same_step = spec.reference is not None and spec.reference.experiment == record.name
    step_runs = record.trained if same_step else None
    diff = compare(groups[name], reference[2], spec.metric, step_runs, level=level)
    measured = f"{name}: {diff.text()} (n={diff.subject.n} vs {diff.reference.n})"
    if is_quick(record):
        return Part(claim, measured, QUICK_VERDICT, None, "", arms)
    direction, margin = spec.direction, spec.min_difference
    verdict = judge(diff, direction, margin)
    needed = ""
    if verdict.startswith("inconclusive"):
        seeds = seeds_needed(diff, direction, margin, power=POWER, cap=SEEDS_CAP)
        if seeds is None:
            needed = "no number of seeds decides it at the observed difference and spread"
        else:
            many = f"{seeds} or more" if seeds >= SEEDS_CAP else f"about {seeds}"
            needed = f"{many} seeds per arm for {POWER:.0%} power at the observed difference"
    return Part(claim, measured, verdict, p_value(diff, direction, margin), needed, arms)


def _arm(experiment: str, variant: str, runs: list[RunRecord]) -> Arm:
    seeds = sorted({int(r.tags[SEED_TAG]) for r in runs if r.tags.get(SEED_TAG, "").isdigit()})
    return Arm(experiment, variant, tuple(seeds))


def _with_holm(judged: list[Judged]) -> list[Judged]:
    """Holm's step-down over the study's hypotheses (one without a p-value still counts in the
    family, which is stricter on the others): a confirmation that does not survive the
    correction reads inconclusive in the corrected column."""
    kept = holm([None if j.p is None else min(1.0, j.p * j.looks) for j in judged])
    out = []
    for j, keep in zip(judged, kept, strict=True):
        corrected = j.verdict
        if j.verdict == "confirmed" and not keep:
            corrected = "inconclusive"
        out.append(replace(j, holm=corrected))
    return out


def _edited(record: ExperimentRecord, text: str, specs: list[ExpectPart] | None) -> str | None:
    frozen = json.loads(record.tags.get(FROZEN_TAG, "null"))
    edited_at = record.tags.get(EDITED_TAG)
    if not frozen or not edited_at:
        return None
    before = parse_expect(json.dumps(frozen.get("expect")))
    if frozen.get("hypothesis") == text and before == specs:
        return None
    return (
        f"expectation edited after the results were seen ({edited_at}); as first run "
        f"({frozen.get('at', '?')}): *{frozen.get('hypothesis', '')}*"
        + ("" if before == specs else f", checked as {'; '.join(map(_claim, before or []))}")
    )


def hypotheses_section(
    judged: list[Judged], quick: bool, records: list[ExperimentRecord] = ()
) -> Section | None:
    """The report's section: what each verdict means, the table, and the seeds added where a
    hypothesis was open; None without hypotheses."""
    table = hypotheses_table(judged)
    if table is None:
        return None
    section = Section("Hypotheses and verdicts")
    if quick:
        section.add(f"Verdicts are left out of a quick study ({QUICK_VERDICT}).")
    section.add(
        "What the study's author expected before each step, as claims about one variant "
        "against a reference, each part judged on its own; the measured difference (subject "
        "minus reference) comes with a 95% interval over the seeds, by seed where the two "
        "share them; a step judged in several looks gets a wider one, which its row names "
        "(see below the table). " + MEANINGS + " The last column corrects for judging every "
        "hypothesis of the study at once (Holm): a confirmation that does not survive it "
        "reads inconclusive there. An open part says how many seeds per arm would decide it.",
        table,
    )
    added = added_seeds(records)
    if added:
        section.add(SEQUENTIAL, Table(["step", "variant", "seeds added", "round", "why"], added))
    return section


SEQUENTIAL = (
    "Seeds added while a hypothesis was open (`cnnlab study --until-decided`): each round "
    "runs more seeds of the two variants an open part compares, and the hypothesis is judged "
    "again, until it is decided or its seeds reach the cap. Stopping at the first decision "
    "would confirm a false claim more often than 2.5%, so a step judged this way plans its "
    "looks (K, from its first seeds, the round size and the cap) and judges each with a "
    "one-sided level of 0.025 / K (the interval's width says which): the chance that any "
    "look confirms a false claim stays at most 2.5%."
)


def added_seeds(records: list[ExperimentRecord]) -> list[list[str]]:
    """One row per round of seeds added to a variant: step, variant, seeds, round, why."""
    rows = []
    for record in records:
        for entry in json.loads(record.tags.get(ADDED_TAG, "[]")):
            seeds = ", ".join(map(str, entry["seeds"]))
            step = record.name.rsplit("/", 1)[-1]
            rows.append([step, entry["variant"], seeds, str(entry["round"]), entry["why"]])
    return rows


def hypotheses_table(judged: list[Judged]) -> Table | None:
    """One row per part of each hypothesis; the hypothesis' own verdicts on its first row."""
    if not judged:
        return None
    rows = []
    for j in judged:
        looks = f" (judged in up to {j.looks} looks)" if j.looks > 1 else ""
        head = [j.step, j.hypothesis + looks + (f" ({j.edited})" if j.edited else "")]
        verdicts = [j.verdict, j.holm or j.verdict]
        parts = j.parts or [Part("-", "-", "-", None, "")]
        for index, part in enumerate(parts):
            lead = head if index == 0 else ["", ""]
            tail = verdicts if index == 0 else ["", ""]
            rows.append([*lead, part.claim, part.measured, _with_needed(part), *tail])
    measured = "measured [interval: 95% unless the row says]"
    headers = ["step", "hypothesis", "part", measured, "part verdict"]
    headers += ["hypothesis verdict", f"with Holm's correction ({len(judged)} hypotheses)"]
    return Table(headers, rows)


def _with_needed(part: Part) -> str:
    return f"{part.verdict}; {part.needed}" if part.needed else part.verdict


def _claim(spec: ExpectPart) -> str:
    subject = spec.variant or "the selected variant"
    ref = spec.reference or Reference("?")
    ref_text = f"{ref.experiment.rsplit('/', 1)[-1]}: {ref.variant or 'selected'}"
    margin = spec.min_difference
    scale = 100 if spec.metric.endswith("accuracy") else 1
    unit = " pts" if scale == 100 else ""
    return (
        f"{subject} vs {ref_text}, {spec.metric}: "
        f"{DIRECTIONS[spec.direction]} (margin {margin * scale:g}{unit})"
    )
