"""The `cnnlab.*` vocabulary of MLflow tags: every tag name cnnlab writes or reads, one constant
each, and the JSON a study step's hypothesis parts are stored as (`cnnlab.expect`).

    from cnnlab.tracking.tags import SEED_TAG, VARIANT_TAG, ExpectPart, expect_json, parse_expect
    tags[EXPECT_TAG] = expect_json([ExpectPart("test_accuracy", "better", reference=...)])
    parts = parse_expect(record.tags.get(EXPECT_TAG))   # None when the step claims nothing

Writers and readers import the names from here, so that a tag is never spelled twice. Standard
library only: any layer may import this module. A tag's value is always a string; the JSON ones
are written with json.dumps and read back by whoever the comment names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# ---------------------------------------------------------------- every run (tracking, runs)

VERSION_TAG = "cnnlab.version"  # run tag: cnnlab's version; tracking's run_tags, on every run
GIT_COMMIT_TAG = "cnnlab.git_commit"  # run tag: cnnlab's own checkout commit; tracking's run_tags
DATA_CHECKSUM_TAG = "cnnlab.data_checksum"  # run tag: the data files' checksum; run_tags
MODEL_TAG = "cnnlab.model"  # run tag: the config's model.name; written by the train run
DATA_NOTE_TAG = "cnnlab.data_note"  # run tag: how the test set came about, when not from files
RESUMED_TAG = "cnnlab.resumed_after_epoch"  # run tag: the checkpoint epoch a run went on from
ERROR_TAG = "cnnlab.error"  # run tag: the error that ended a run (<= 5000 chars); tracker, search
STOP_REASON_TAG = "cnnlab.stop_reason"  # run tag: why training stopped early; tracker, search
COMPUTE_TAG = "cnnlab.compute"  # run tag: device, precision, layout, fused blocks; the tracker
TRACKING_GAP_TAG = "cnnlab.tracking_gap"  # run tag: epochs logged late (server away); tracker
# Run tag read by the advisor: "diverged: ..." on a FAILED study run (cnnlab writes ERROR_TAG).
FAILURE_TAG = "cnnlab.failure"

# ---------------------------------------------------------------- searches (cnnlab.search)

SEARCH_ID_TAG = "cnnlab.search_id"  # run tag of a search's parent and trials; model-version tag
PARENT_RUN_TAG = "cnnlab.parent_run_id"  # model-version tag: the search's parent run (export)
RUN_KIND_TAG = "cnnlab.run_kind"  # run tag: "search" (the parent) or "trial"; search's layout
TRIAL_TAG = "cnnlab.trial"  # run tag: a trial's number, as text; search's layout
OVERRIDES_TAG = "cnnlab.overrides"  # run tag: a trial's sample as "--set key=value ..."; layout
FAIL_REASON_TAG = "cnnlab.fail_reason"  # run tag: one of search.FAIL_REASONS; search's layout
PRUNED_TAG = "cnnlab.pruned"  # run tag: "true" on a trial the pruner stopped; search's layout
INTERRUPTED_TAG = "cnnlab.interrupted"  # run tag: "true" on a trial cut short (KILLED); layout
SUPERSEDED_TAG = "cnnlab.superseded"  # run tag: "true" on a trial its engine never recorded
WORKER_LOST_TAG = "cnnlab.worker_lost"  # run tag: "true" on a trial whose worker died; layout
TRIALS_REQUESTED_TAG = "cnnlab.trials_requested"  # parent run tag: search.trials; cnnlab.search
SEARCH_STATE_TAG = "cnnlab.search_state"  # parent run tag: where the engine's state is kept

# ---------------------------------------------------------------- studies (cnnlab.study)
# Written by the study (study._record, study._run), read by cnnlab.reports and cnnlab.advisor.

STEP_HASH_TAG = "cnnlab.step_hash"  # run and experiment tag: a study step's configs, hashed
SEEDS_TAG = "cnnlab.seeds"  # experiment tag: JSON {variant: [seeds]}, the step's runs as it is
SEED_TAG = "cnnlab.seed"  # run tag: the train.seed of one of a variant's runs
VARIANT_TAG = "cnnlab.variant"  # run tag: the study variant a run belongs to
SELECT_TAG = "cnnlab.select"  # experiment tag: what picks the step's variant (reports.SELECTIONS)
QUICK_TAG = "cnnlab.quick"  # experiment tag: "true" for a --quick study, whose verdicts are void
DESCRIPTION_TAG = "cnnlab.description"  # experiment tag: the step file's description
HYPOTHESIS_TAG = "cnnlab.hypothesis"  # experiment tag: the step file's hypothesis, as it is now
REFERENCE_TAG = "cnnlab.reference"  # experiment tag: JSON Reference.to_dict(), the compared step
EXPECT_TAG = "cnnlab.expect"  # experiment tag: expect_json() of the hypothesis' parts
# Experiment tag: JSON {"hypothesis", "expect": [parts] or null, "at": "YYYY-MM-DD HH:MM" UTC},
# the step's claim as it first ran (re-frozen while no run of it has finished)
FROZEN_TAG = "cnnlab.frozen"
EDITED_TAG = "cnnlab.edited_at"  # experiment tag: "YYYY-MM-DD HH:MM" UTC, claim edited after runs
STEP_COMPLETE_TAG = "cnnlab.step_complete"  # experiment tag: "<step hash>:<seeds hash>", all ran
# Experiment tag of a step judged sequentially (study --until-decided): JSON {"looks": K,
# "round": seeds per round, "max_seeds": cap}; its hypothesis is judged at level 0.025 / K.
LOOKS_TAG = "cnnlab.looks"
# Experiment tag: JSON list of {"variant", "seeds", "round", "why", "at"}: seeds added to the
# step's variants, round by round, because a hypothesis comparing them was still open.
ADDED_TAG = "cnnlab.added_seeds"
# Prefix of experiment tags holding the study's own published figures for a step:
# "cnnlab.published.<name>" = value, from the step file's `published` table.
PUBLISHED_PREFIX = "cnnlab.published."


# ---------------------------------------------------------------- the JSON of cnnlab.expect


@dataclass(frozen=True)
class Reference:
    """What a comparison is made with, as stored: a study step's experiment ("<study>/<step>")
    and one of its variants (None: the step's selected variant)."""

    experiment: str
    variant: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"experiment": self.experiment, "variant": self.variant}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reference:
        return cls(data.get("experiment") or "", data.get("variant"))


@dataclass(frozen=True)
class ExpectPart:
    """One part of a hypothesis as `cnnlab.expect` (and `cnnlab.frozen`'s "expect") hold it:

    {"metric": "test_accuracy",     # a name of reports.METRICS, or a logged metric's
     "direction": "better",         # a key of reports.DIRECTIONS
     "min_difference": 0.0,         # the margin, in the metric's units
     "variant": "wide",             # the subject; null: the step's selected variant
     "reference": {"experiment": "<study>/<step>", "variant": "narrow"},
     "sense": null}                 # "higher"/"lower" is better; null: METRICS knows
    """

    metric: str
    direction: str
    min_difference: float = 0.0
    variant: str | None = None
    reference: Reference | None = None
    sense: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored shape, keys in this order (what studies have always written)."""
        return {
            "metric": self.metric,
            "direction": self.direction,
            "min_difference": self.min_difference,
            "variant": self.variant,
            "reference": None if self.reference is None else self.reference.to_dict(),
            "sense": self.sense,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExpectPart:
        """A stored part; one recorded before parts had a sense reads with sense None."""
        reference = data.get("reference")
        return cls(
            metric=data["metric"],
            direction=data["direction"],
            min_difference=data.get("min_difference", 0.0),
            variant=data.get("variant"),
            reference=Reference.from_dict(reference) if isinstance(reference, Mapping) else None,
            sense=data.get("sense"),
        )


def expect_json(parts: Iterable[ExpectPart]) -> str:
    """The value of `cnnlab.expect`: a JSON list of parts, in the step file's order."""
    return json.dumps([p.to_dict() for p in parts])


def parse_expect(text: str | None) -> list[ExpectPart] | None:
    """A stored `cnnlab.expect` (or a frozen record's "expect", dumped): its parts; None when
    there is no claim. Studies recorded before parts stored one dict, read as one part."""
    found = json.loads(text or "null")
    if found is None:
        return None
    return [ExpectPart.from_dict(p) for p in (found if isinstance(found, list) else [found])]
