"""The study advisor: what went wrong in each step, and the next step as a ready file.

    advice = advise(uri, ["experiments/1-baseline"], out=Path("advice"))
    advice.diagnoses      # every diagnosis, ranked, with its rule and evidence
    advice.proposals      # the step files written, best first
    advice.section()      # the report's "What to try next"

Reads only what MLflow recorded (curves, the logged architecture and config, seeds, trials,
verdicts) and trains nothing. A proposal is drawn from a step's selected variant (a search's
best trial), one change at a time, and numbered after the study's last step, so that copied into
the study folder it runs as its next step: `cnnlab study DIR --only 7-train-longer`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cnnlab.advisor._diagnose import diagnose
from cnnlab.advisor._diagnosis import Diagnosis
from cnnlab.advisor._propose import slug, step_file
from cnnlab.reports import (
    ExperimentRecord,
    Section,
    Table,
    collect,
    group_variants,
    judge_experiments,
    selected_variant,
    selection,
)
from cnnlab.tracking import Store
from cnnlab.tracking.tags import SEED_TAG

NOTHING = "nothing to fix found; the next question is yours"


@dataclass(frozen=True)
class Proposal:
    step: str  # the proposed step's name: "<number>-<what it does>"
    path: Path | None  # the file written; None when advice was asked without a folder
    text: str  # the step file
    diagnosis: Diagnosis


@dataclass
class Advice:
    steps: list[str]  # the experiments read, in order
    diagnoses: list[Diagnosis]  # ranked, best first
    proposals: list[Proposal] = field(default_factory=list)

    def section(self) -> Section:
        """The report's "What to try next"."""
        section = Section("What to try next")
        section.add(
            "What `cnnlab advise` reads in the runs: each diagnosis names the rule it applied "
            "and the numbers that fired it, per seed and across seeds (a diagnosis on fewer "
            "than most seeds is a note, not a proposal). Each proposal is a step file that "
            "changes one thing from the variant it was drawn from and states what it expects."
        )
        if not self.diagnoses:
            return section.add(f"No diagnosis: {NOTHING}.")
        rows = [_row(d, self._file_of(d)) for d in self.diagnoses]
        quiet = [s.rsplit("/", 1)[-1] for s in self.steps if not self._of(s)]
        rows += [[step, "-", "-", "-", NOTHING] for step in quiet]
        return section.add(Table(["step", "diagnosis", "rule", "evidence", "proposal"], rows))

    def _file_of(self, diagnosis: Diagnosis) -> str:
        for p in self.proposals:
            if p.diagnosis is diagnosis:
                return f"`{p.path.name if p.path else p.step + '.toml'}`: {_claim(p.diagnosis)}"
        return "note" if not diagnosis.proposal else "(same change as a proposal above)"

    def to_json(self) -> dict:
        files = {id(p.diagnosis): str(p.path) if p.path else None for p in self.proposals}
        return {
            "steps": self.steps,
            "diagnoses": [{**asdict(d), "file": files.get(id(d))} for d in self.diagnoses],
            "nothing_found": [s for s in self.steps if not self._of(s)],
        }

    def _of(self, experiment: str) -> list[Diagnosis]:
        return [d for d in self.diagnoses if d.experiment == experiment]


def advise(
    uri: str,
    experiments: list[str] | None = None,
    out: Path | None = None,
    origin: str = "cnnlab advise",
) -> Advice:
    """Diagnoses every named experiment (default: all) and, with `out`, writes each proposal's
    step file there (whole or not at all). Returns the Advice."""
    records = collect(uri, experiments)
    judged = {j.experiment: j for j in judge_experiments(uri, [r.name for r in records])}
    store = Store(uri)
    found: list[Diagnosis] = []
    for record in records:
        found += diagnose(record, judged.get(record.name), _space(store, record))
    found.sort(key=lambda d: -d.score)
    advice = Advice([r.name for r in records], found)
    number = _last_number(records) + 1
    stamp = f"{origin}, {time.strftime('%Y-%m-%d')}"
    seen: set[tuple[str, str]] = set()
    for diagnosis in found:
        record = next(r for r in records if r.name == diagnosis.experiment)
        drawn = _proposable(diagnosis, record, seen)
        if drawn is None:
            continue
        variant, runs = drawn
        name = f"{number}-{slug(diagnosis.kind)}"
        text = step_file(
            diagnosis,
            _config_text(store, runs),
            step=record.name.rsplit("/", 1)[-1],
            variant=None if _is_search(record) else variant,
            seeds=len(runs),
            origin=stamp,
        )
        advice.proposals.append(Proposal(name, None, text, diagnosis))
        number += 1
    if out is not None:
        advice.proposals = [_write(p, Path(out)) for p in advice.proposals]
    return advice


def _proposable(diagnosis: Diagnosis, record: ExperimentRecord, seen: set):
    """(variant, its runs) a proposal is drawn from, or None: a note, another variant than the
    step's selected one, or a change already proposed for this step."""
    if not diagnosis.proposal or not diagnosis.change:
        return None
    key = (record.name, json.dumps(diagnosis.change, sort_keys=True))
    if key in seen:
        return None
    groups = group_variants(record.trained)
    if diagnosis.kind == "search_edge":
        parent = _parent(record)
        seen.add(key)
        return None if parent is None else ("search", [parent])
    chosen = selected_variant(groups, selection(record))
    if diagnosis.variant is not None and diagnosis.variant != chosen:
        return None
    seen.add(key)
    return chosen, groups[chosen]


def _is_search(record: ExperimentRecord) -> bool:
    return any(r.parent_id for r in record.runs)


def _parent(record: ExperimentRecord):
    parents = {r.parent_id for r in record.runs if r.parent_id}
    return next((r for r in record.runs if r.run_id in parents), None)


def _space(store: Store, record: ExperimentRecord) -> dict | None:
    """A search step's [search.space], from its parent run's logged config."""
    import tomllib

    parent = _parent(record)
    if parent is None:
        return None
    try:
        return tomllib.loads(_config_text(store, [parent])).get("search", {}).get("space")
    except FileNotFoundError:
        return None


def _config_text(store: Store, runs) -> str:
    """The config the first of the runs (lowest seed) logged."""
    first = min(runs, key=lambda r: int(r.tags.get(SEED_TAG, "0") or 0))
    with tempfile.TemporaryDirectory() as tmp:
        return Path(store.download_artifacts(first.run_id, "config.toml", tmp)).read_text()


def _last_number(records: list[ExperimentRecord]) -> int:
    numbers = [re.match(r"(\d+)", r.name.rsplit("/", 1)[-1]) for r in records]
    return max((int(m[1]) for m in numbers if m), default=0)


def _write(proposal: Proposal, out: Path) -> Proposal:
    """Written to a temporary file and renamed: a proposal is whole or not there."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{proposal.step}.toml"
    fd, tmp = tempfile.mkstemp(dir=out, suffix=".part")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(proposal.text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Proposal(proposal.step, path, proposal.text, proposal.diagnosis)


def _claim(d: Diagnosis) -> str:
    """The proposal's hypothesis; a new search (which has none) says what it changes."""
    if d.hypothesis:
        return d.hypothesis
    return "a new search: " + "; ".join(f"{key} = {value}" for key, value in d.change.items())


def _row(d: Diagnosis, proposal: str) -> list[str]:
    where = d.experiment.rsplit("/", 1)[-1] + (f": {d.variant}" if d.variant else "")
    # A search's diagnoses count samples or trials, as their evidence says: not seeds.
    per_seed = d.judged > 1 and not d.kind.startswith("search")
    seeds = f" (on {d.held} of {d.judged} seeds)" if per_seed else ""
    return [where, d.kind.replace("_", " ") + seeds, d.rule, d.evidence, proposal]
