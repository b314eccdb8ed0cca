"""What a study step records of itself in its MLflow experiment, for the report to read.

    describe(store, exp_id, step, prefix="experiments", digest=..., quick=False, seeds=...)

Experiment tags written here (the names of the shared ones live in reports._collect):

    cnnlab.description, cnnlab.hypothesis     the step file's text, as it is now
    cnnlab.reference                          JSON {"experiment", "variant"}
    cnnlab.expect                             JSON list of parts: see expectation_json
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

from cnnlab.reports._collect import (
    EDITED_TAG,
    FROZEN_TAG,
    SEEDS_TAG,
    SELECT_TAG,
    STEP_HASH_TAG,
)
from cnnlab.study._steps import Expectation, Step, Target
from cnnlab.tracking import Store

HYPOTHESIS, EXPECT = "cnnlab.hypothesis", "cnnlab.expect"
# Experiment tags written from the step file (besides the published figures): what the step
# no longer says is deleted, so the report never reads a stale one.
_DESCRIBED = ("cnnlab.description", HYPOTHESIS, "cnnlab.reference", EXPECT)


def target_json(target: Target, prefix: str) -> dict[str, str | None]:
    """A comparison's target as stored: {"experiment": "<study>/<step>", "variant": name}
    (variant None: the step's selected variant)."""
    return {"experiment": f"{prefix}/{target.step}", "variant": target.variant}


def expectation_json(parts: list[Expectation], prefix: str) -> list[dict[str, Any]]:
    """The parts of a hypothesis as `cnnlab.expect` (and `cnnlab.frozen`'s "expect") hold them:

        [{"metric": "test_accuracy",     # a name of reports.METRICS, or a logged metric's
          "direction": "better",         # a key of reports.DIRECTIONS
          "min_difference": 0.0,         # the margin, in the metric's units
          "variant": "wide",             # the subject; null: the step's selected variant
          "reference": {"experiment": "<study>/<step>", "variant": "narrow"},  # or null
          "sense": null},                # "higher"/"lower" is better; null: METRICS knows
         ...]

    One element per part, in the step file's order; the hypothesis holds when every part does.
    """
    return [
        {
            "metric": e.metric,
            "direction": e.direction,
            "min_difference": e.min_difference,
            "variant": e.variant,
            "reference": target_json(e.reference, prefix),
            "sense": e.sense,
        }
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
    from cnnlab.reports import PUBLISHED

    tags: dict[str, str | None] = {f"{PUBLISHED}{k}": v for k, v in step.published.items()}
    tags.update({STEP_HASH_TAG: digest, "cnnlab.quick": str(quick).lower()})
    if seeds:
        tags[SEEDS_TAG] = json.dumps(seeds)
    if step.description:
        tags["cnnlab.description"] = step.description
        tags["mlflow.note.content"] = step.description  # shown by the MLflow UI
    tags[SELECT_TAG] = step.select
    if step.hypothesis:
        tags[HYPOTHESIS] = step.hypothesis
    if step.reference is not None:
        tags["cnnlab.reference"] = json.dumps(target_json(step.reference, prefix))
    if step.expect:
        tags[EXPECT] = json.dumps(expectation_json(step.expect, prefix))
    experiment = store.experiment(exp_id)
    existing = experiment.tags
    tags.update(_frozen(store, experiment, tags))
    for key, value in tags.items():
        if value is not None and existing.get(key) != value:
            store.set_experiment_tag(exp_id, key, value)
    # What the step no longer says must not stay behind for the report to read.
    for key in existing:
        dropped = key not in tags and key.startswith((PUBLISHED, *_DESCRIBED))
        if dropped or (key in tags and tags[key] is None):
            store.delete_experiment_tag(exp_id, key)


def _frozen(store: Store, experiment, tags: dict[str, str | None]) -> dict[str, str | None]:
    """The frozen record's tags to set (a value) or drop (None)."""
    existing = experiment.tags
    now = _claim(tags.get(HYPOTHESIS), tags.get(EXPECT))
    frozen = json.loads(existing.get(FROZEN_TAG, "null"))
    if frozen is not None and _what(frozen) == now:
        return {EDITED_TAG: None}
    if not _has_finished(store, experiment.experiment_id):
        # No result could have been seen yet: the record follows the step file.
        return {FROZEN_TAG: json.dumps({**now, "at": _stamp()}), EDITED_TAG: None}
    out: dict[str, str | None] = {}
    if frozen is None:  # runs finished before expectations were frozen: the tags as they were
        created = experiment.creation_time
        before = _claim(existing.get(HYPOTHESIS), existing.get(EXPECT))
        frozen = {**before, "at": _stamp(created / 1000 if created else None)}
        out[FROZEN_TAG] = json.dumps(frozen)
        if _what(frozen) == now:
            return {**out, EDITED_TAG: None}
    # Edited after results: the record stays; the date moves only when the text does.
    changed = any(existing.get(k) != tags.get(k) for k in (HYPOTHESIS, EXPECT))
    edited = existing.get(EDITED_TAG)
    out[EDITED_TAG] = _stamp() if changed or not edited else edited
    return out


def _claim(hypothesis: str | None, expect: str | None) -> dict[str, Any]:
    """{"hypothesis": text, "expect": [parts] or None}; an expect stored before parts (one
    dict, no sense) in today's shape, so an unedited step compares equal."""
    parts = json.loads(expect or "null")
    if parts is not None:
        parts = [
            {**p, "sense": p.get("sense")} for p in (parts if isinstance(parts, list) else [parts])
        ]
    return {"hypothesis": hypothesis or "", "expect": parts}


def _what(frozen: dict[str, Any]) -> dict[str, Any]:
    return {"hypothesis": frozen.get("hypothesis") or "", "expect": frozen.get("expect")}


def _has_finished(store: Store, exp_id: str) -> bool:
    """Whether any run of the experiment finished: its results could have been seen."""
    return bool(store.search_runs([exp_id], "attributes.status = 'FINISHED'", max_results=1))


def _stamp(seconds: float | None = None) -> str:
    """UTC, to the minute: "YYYY-MM-DD HH:MM"; now when `seconds` (since the epoch) is None."""
    moment = datetime.now(UTC) if seconds is None else datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%d %H:%M")
