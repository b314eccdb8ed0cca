"""What a study step records of itself in its MLflow experiment, for the report to read.

    describe(store, exp_id, step, prefix="experiments", digest=..., quick=False, seeds=...)

Experiment tags written here (their names, and the JSON of the parts, live in tracking.tags):

    cnnlab.description, cnnlab.hypothesis     the step file's text, as it is now
    cnnlab.reference                          JSON {"experiment", "variant"}
    cnnlab.expect                             JSON list of parts: see tags.ExpectPart
    cnnlab.frozen                             JSON {"hypothesis", "expect", "at"}: the
                                              hypothesis and parts as the step first ran
    cnnlab.edited_at                          "YYYY-MM-DD HH:MM" (UTC): when the hypothesis or
                                              its parts were edited after runs had finished

The frozen record is what the author expected before seeing results: edited before any run
finished, it follows the edit; edited after, it stays, and cnnlab.edited_at says when.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cnnlab.study._steps import Step
from cnnlab.study._targets import Expectation, Target
from cnnlab.tracking import Store
from cnnlab.tracking.tags import (
    DESCRIPTION_TAG,
    EDITED_TAG,
    EXPECT_TAG,
    FROZEN_TAG,
    HYPOTHESIS_TAG,
    PUBLISHED_PREFIX,
    QUICK_TAG,
    REFERENCE_TAG,
    SEEDS_TAG,
    SELECT_TAG,
    STEP_HASH_TAG,
    ExpectPart,
    Reference,
    expect_json,
    parse_expect,
)

# Experiment tags written from the step file (besides the published figures): what the step
# no longer says is deleted, so the report never reads a stale one.
_DESCRIBED = (DESCRIPTION_TAG, HYPOTHESIS_TAG, REFERENCE_TAG, EXPECT_TAG)


def target_reference(target: Target, prefix: str) -> Reference:
    """A comparison's target as stored: {"experiment": "<study>/<step>", "variant": name}
    (variant None: the step's selected variant)."""
    return Reference(f"{prefix}/{target.step}", target.variant)


def expect_parts(parts: list[Expectation], prefix: str) -> list[ExpectPart]:
    """The parts of a hypothesis as `cnnlab.expect` (and `cnnlab.frozen`'s "expect") hold them
    (tracking.tags.ExpectPart): one element per part, in the step file's order; the hypothesis
    holds when every part does."""
    return [
        ExpectPart(
            e.metric,
            e.direction,
            e.min_difference,
            e.variant,
            target_reference(e.reference, prefix),
            e.sense,
        )
        for e in parts
    ]


def describe(
    store: Store,
    exp_id: str,
    step: Step,
    *,
    prefix: str,
    digest: str,
    quick: bool,
    seeds: dict[str, list[int]],
) -> None:
    """Stores what the report needs to know of the step in the experiment itself."""
    tags: dict[str, str | None] = {f"{PUBLISHED_PREFIX}{k}": v for k, v in step.published.items()}
    tags.update({STEP_HASH_TAG: digest, QUICK_TAG: str(quick).lower()})
    if seeds:
        tags[SEEDS_TAG] = json.dumps(seeds)
    if step.description:
        tags[DESCRIPTION_TAG] = step.description
        tags["mlflow.note.content"] = step.description  # shown by the MLflow UI
    tags[SELECT_TAG] = step.select
    if step.hypothesis:
        tags[HYPOTHESIS_TAG] = step.hypothesis
    if step.reference is not None:
        tags[REFERENCE_TAG] = json.dumps(target_reference(step.reference, prefix).to_dict())
    if step.expect:
        tags[EXPECT_TAG] = expect_json(expect_parts(step.expect, prefix))
    experiment = store.experiment(exp_id)
    existing = experiment.tags
    tags.update(_frozen(store, experiment, tags))
    for key, value in tags.items():
        if value is not None and existing.get(key) != value:
            store.set_experiment_tag(exp_id, key, value)
    # What the step no longer says must not stay behind for the report to read.
    for key in existing:
        dropped = key not in tags and key.startswith((PUBLISHED_PREFIX, *_DESCRIBED))
        if dropped or (key in tags and tags[key] is None):
            store.delete_experiment_tag(exp_id, key)


def _frozen(store: Store, experiment, tags: dict[str, str | None]) -> dict[str, str | None]:
    """The frozen record's tags to set (a value) or drop (None)."""
    existing = experiment.tags
    now = _claim(tags.get(HYPOTHESIS_TAG), tags.get(EXPECT_TAG))
    frozen = json.loads(existing.get(FROZEN_TAG, "null"))
    if frozen is not None and _what(frozen) == now:
        return {EDITED_TAG: None}
    if not _has_finished(store, experiment.experiment_id):
        # No result could have been seen yet: the record follows the step file.
        return {FROZEN_TAG: json.dumps({**now, "at": _stamp()}), EDITED_TAG: None}
    out: dict[str, str | None] = {}
    if frozen is None:  # runs finished before expectations were frozen: the tags as they were
        created = experiment.creation_time
        before = _claim(existing.get(HYPOTHESIS_TAG), existing.get(EXPECT_TAG))
        frozen = {**before, "at": _stamp(created / 1000 if created else None)}
        out[FROZEN_TAG] = json.dumps(frozen)
        if _what(frozen) == now:
            return {**out, EDITED_TAG: None}
    # Edited after results: the record stays; the date moves only when the text does.
    changed = any(existing.get(k) != tags.get(k) for k in (HYPOTHESIS_TAG, EXPECT_TAG))
    edited = existing.get(EDITED_TAG)
    out[EDITED_TAG] = _stamp() if changed or not edited else edited
    return out


def _claim(hypothesis: str | None, expect: str | None) -> dict[str, Any]:
    """{"hypothesis": text, "expect": [parts] or None}; an expect stored before parts (one
    dict, no sense) in today's shape, so an unedited step compares equal."""
    parts = parse_expect(expect)
    dicts = None if parts is None else [p.to_dict() for p in parts]
    return {"hypothesis": hypothesis or "", "expect": dicts}


def _what(frozen: dict[str, Any]) -> dict[str, Any]:
    return {"hypothesis": frozen.get("hypothesis") or "", "expect": frozen.get("expect")}


def _has_finished(store: Store, exp_id: str) -> bool:
    """Whether any run of the experiment finished: its results could have been seen."""
    return bool(store.search_runs([exp_id], "attributes.status = 'FINISHED'", max_results=1))


def _stamp(seconds: float | None = None) -> str:
    """UTC, to the minute: "YYYY-MM-DD HH:MM"; now when `seconds` (since the epoch) is None."""
    moment = datetime.now(UTC) if seconds is None else datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%d %H:%M")
