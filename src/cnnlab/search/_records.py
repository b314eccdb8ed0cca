"""What one trial came to, kept in the engine's state so a resumed search can show every trial.

record = TrialRecord(0, {"model.filters": 88}, "ok", value=0.41, epochs=3, seconds=9.5)
print(format_table(records, objective="val_loss"))
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

# A sample no model can be built from, refused in milliseconds before any training.
INVALID_ARCHITECTURE = "invalid_architecture"
# Why a trial failed; the child run carries the same word in its cnnlab.fail_reason tag.
FAIL_REASONS = (INVALID_ARCHITECTURE, "invalid_config", "diverged", "non_finite", "error")


@dataclass
class TrialRecord:
    number: int  # 0-based, counted across resumes; trials cut short by an interrupt do not count
    params: dict[str, Any]  # the sample, dotted key -> config value
    status: str  # "ok", "failed" or "pruned"
    value: float | None = None  # the objective (val_loss or val_accuracy of the best epoch)
    epochs: int = 0  # epochs trained; 0 for a trial refused before training
    seconds: float = 0.0  # wall time of the trial, tracking included
    run_id: str | None = None  # its nested MLflow run
    reason: str = ""  # failed: one of FAIL_REASONS; pruned: when and by what
    error: str = ""  # failed: the error in one line
    extra: dict[str, Any] = field(default_factory=dict)  # engine facts, e.g. optuna's number

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))  # plain JSON types for any engine's store

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        return cls(**data)


def ranked(records: list[TrialRecord], maximize: bool) -> list[TrialRecord]:
    """Succeeded trials best first, then pruned ones by their last value, then failed ones."""

    def key(r: TrialRecord) -> tuple[int, float, int]:
        group = {"ok": 0, "pruned": 1}.get(r.status, 2)
        value = r.value if r.value is not None and math.isfinite(r.value) else math.inf
        return group, (-value if maximize and value != math.inf else value), r.number

    return sorted(records, key=key)


def best_of(records: list[TrialRecord], maximize: bool) -> TrialRecord | None:
    ok = [r for r in records if r.status == "ok"]
    return ranked(ok, maximize)[0] if ok else None


def counts_as_trial(record: TrialRecord, count_invalid: bool) -> bool:
    """Whether a finished sample is one of the `search.trials` a search runs: the one rule that
    the search loop, progress bars and a study's progress share. Without search.count_invalid,
    impossible samples are drawn again rather than counted."""
    return count_invalid or record.reason != INVALID_ARCHITECTURE


def counts(records: list[TrialRecord]) -> dict[str, int]:
    statuses = [r.status for r in records]
    return {s: statuses.count(s) for s in ("ok", "failed", "pruned")}


def format_table(records: list[TrialRecord], objective: str, maximize: bool) -> str:
    """rank, trial, status, metric, epochs, seconds, params; failures show their reason."""
    rows = [("rank", "trial", "status", objective, "epochs", "seconds", "params / reason")]
    rank = 0
    for r in ranked(records, maximize):
        rank += r.status == "ok"
        value = "-" if r.value is None else f"{r.value:.4f}"
        params = " ".join(f"{k}={_short(v)}" for k, v in r.params.items())
        detail = params if r.status == "ok" else f"{params}  [{r.reason or r.status}]"
        rows.append(
            (
                str(rank) if r.status == "ok" else "-",
                str(r.number),
                r.status,
                value,
                str(r.epochs),
                f"{r.seconds:.1f}",
                detail,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row[:6], widths)) + "  " + row[6] for row in rows]
    return "\n".join(lines)


def describe_record(r: TrialRecord) -> str:
    """One line per finished trial, for progress on stderr."""
    value = "" if r.value is None else f"{r.value:.4f}  "
    params = " ".join(f"{k}={_short(v)}" for k, v in r.params.items())
    why = f"  [{r.reason}: {r.error}]" if r.status == "failed" else ""
    return (
        f"trial {r.number}: {r.status}  {value}{r.epochs} epochs  {r.seconds:.1f}s  {params}{why}"
    )


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, list | str | bool) else str(value)
