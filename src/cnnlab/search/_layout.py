"""The MLflow layout of a search: one parent run, one nested child run per trial.

    layout = SearchLayout(uri, "cnnlab", search_id)
    resumed = layout.open_parent("search-1a2b", params, tags, artifacts)  # found again on resume
    layout.close_stale(done=len(records))   # runs a killed process left RUNNING end KILLED
    ...
    layout.finish(records, objective, maximize)

The parent carries the tag cnnlab.search_id, which is how a rerun of the same command finds it.
A pruned child ends FINISHED with cnnlab.pruned=true; a failed one FAILED with cnnlab.fail_reason
and cnnlab.error; an interrupted one KILLED with cnnlab.interrupted=true. A rerun continues an
interrupted child (cut_child) from its checkpoint, in the same run, when it has one.
"""

from __future__ import annotations

from typing import Any

from cnnlab.search._records import TrialRecord, best_of, counts
from cnnlab.tracking import Store, param_text, run_tags
from cnnlab.tracking.tags import (
    ERROR_TAG,
    FAIL_REASON_TAG,
    INTERRUPTED_TAG,
    OVERRIDES_TAG,
    PRUNED_TAG,
    RUN_KIND_TAG,
    SEARCH_ID_TAG,
    STOP_REASON_TAG,
    SUPERSEDED_TAG,
    TRIAL_TAG,
    WORKER_LOST_TAG,
)


class SearchLayout:
    def __init__(self, uri: str, experiment: str, search_id: str):
        self.store = Store(uri)
        self.experiment_id = self.store.ensure_experiment(experiment)
        self.search_id = search_id
        self.parent_id: str | None = None

    # ------------------------------------------------------------ parent

    def open_parent(
        self, run_name: str, params: dict[str, str], tags: dict[str, str], artifacts: dict[str, str]
    ) -> bool:
        """Reopens the parent of this search id (True) or creates one; sets self.parent_id."""
        found = self.find_parent()
        if found:
            self.parent_id = found
            self.store.reopen(self.parent_id)
            self.store.set_tags(self.parent_id, tags)
            return True
        self.parent_id = self.create_parent(run_name, params, tags, artifacts)
        return False

    def find_parent(self) -> str | None:
        """The oldest parent run with this search id, if any."""
        found = self._runs(f"tags.`{SEARCH_ID_TAG}` = '{self.search_id}'", kind="search")
        return (
            min(found, key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id
            if found
            else None
        )

    def create_parent(
        self, run_name: str, params: dict[str, str], tags: dict[str, str], artifacts: dict[str, str]
    ) -> str:
        tags = run_tags(None, {**tags, SEARCH_ID_TAG: self.search_id, RUN_KIND_TAG: "search"})
        run_id = self.store.create_run(self.experiment_id, run_name, tags).info.run_id
        self.store.log_params(run_id, params)
        self.store.log_texts(run_id, artifacts)
        return run_id

    def discard_parent(self, run_id: str) -> None:
        """A parent that lost the election to another worker's: ended and deleted."""
        self.store.terminate(run_id, "KILLED")
        self.store.delete_run(run_id)

    def reopen_parent(self) -> None:
        self.store.reopen(self.parent_id)

    def finish(self, records: list[TrialRecord], objective: str, maximize: bool) -> None:
        """Counts and the best trial on the parent; FAILED when no trial succeeded."""
        n = counts(records)
        metrics = {
            "trials_total": len(records),
            "trials_completed": n["ok"],
            "trials_failed": n["failed"],
            "trials_pruned": n["pruned"],
        }
        best = best_of(records, maximize)
        tags: dict[str, str] = {}
        if best is not None:
            metrics.update({"best_value": best.value, f"best_{objective}": best.value})
            tags = {f"best_{k}": param_text(v) for k, v in best.params.items()}
            tags.update({"best_trial": str(best.number), "best_run_id": str(best.run_id)})
        # Workers of a shared search each finish; a summary already on the parent is not repeated.
        logged = self.store.get_run(self.parent_id).data.metrics
        changed = {k: v for k, v in metrics.items() if logged.get(k) != float(v)}
        if changed:
            self.store.log_metrics(self.parent_id, changed, step=len(records))
        self.store.set_tags(self.parent_id, tags)
        if best is None and records:
            first = min((r for r in records), key=lambda r: r.number)
            self.end_parent("FAILED", f"all {len(records)} trials failed; first: {first.error}")
        else:
            self.end_parent("FINISHED")

    def end_parent(self, status: str, error: str | None = None) -> None:
        if self.parent_id is None:
            return
        if error:
            self.store.set_tags(self.parent_id, {ERROR_TAG: error[:5000]})
        self.store.terminate(self.parent_id, status)

    # ------------------------------------------------------------ children

    def child_tags(self, number: int, overrides: list[str]) -> dict[str, str]:
        return {
            SEARCH_ID_TAG: self.search_id,
            RUN_KIND_TAG: "trial",
            TRIAL_TAG: str(number),
            OVERRIDES_TAG: " ".join(f"--set {o}" for o in overrides)[:5000],
        }

    def failed_child(
        self, number: int, params: dict[str, Any], overrides: list[str], reason: str, error: str
    ) -> str:
        """A trial refused before training: a FAILED child run, in milliseconds."""
        tags = {
            **self.child_tags(number, overrides),
            FAIL_REASON_TAG: reason,
            ERROR_TAG: error[:5000],
        }
        name = f"trial-{number:03d}"
        run_id = self.store.create_run(self.experiment_id, name, tags, self.parent_id).info.run_id
        try:
            self.store.log_params(run_id, params)
        finally:  # even when interrupted here, the run must not stay RUNNING
            self.store.terminate(run_id, "FAILED")
        return run_id

    def find_child(self, number: int) -> str | None:
        """The newest child of trial `number` that was not cut short by an interrupt."""
        runs = self._runs(f"tags.`{TRIAL_TAG}` = '{number}'", kind="trial")
        runs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == self.parent_id]
        runs = [r for r in runs if r.info.status != "KILLED"]
        return runs[0].info.run_id if runs else None

    def cut_child(self, number: int) -> str | None:
        """The newest child of trial `number` cut short by an interrupt or a kill (KILLED, not
        superseded): the rerun of that trial goes on from its checkpoint, if it has one."""
        runs = self._runs(f"tags.`{TRIAL_TAG}` = '{number}'", kind="trial")
        runs = [
            r
            for r in runs
            if r.data.tags.get("mlflow.parentRunId") == self.parent_id
            and r.info.status == "KILLED"
            and SUPERSEDED_TAG not in r.data.tags
        ]
        return runs[0].info.run_id if runs else None

    def mark_failed(self, run_id: str, reason: str, error: str) -> None:
        self.store.set_tags(run_id, {FAIL_REASON_TAG: reason, ERROR_TAG: error[:5000]})
        self.store.terminate(run_id, "FAILED")

    def mark_pruned(self, run_id: str, reason: str) -> None:
        self.store.set_tags(run_id, {PRUNED_TAG: "true", STOP_REASON_TAG: reason})

    def close_stale(self, done: int) -> int:
        """Ends what a killed process left: RUNNING children, and children of trials the engine
        never recorded (killed between the run's end and the state's save). Returns how many."""
        closed = 0
        if self.parent_id is None:
            return closed
        for run in self._runs(f"tags.`mlflow.parentRunId` = '{self.parent_id}'"):
            number = int(run.data.tags.get(TRIAL_TAG, -1))
            if run.info.status == "RUNNING":
                self.store.set_tags(run.info.run_id, {INTERRUPTED_TAG: "true"})
            elif number >= done and run.info.status != "KILLED":
                self.store.set_tags(run.info.run_id, {SUPERSEDED_TAG: "true"})
            else:
                continue
            self.store.terminate(run.info.run_id, "KILLED")
            closed += 1
        return closed

    def close_lost(self, numbers: set[int]) -> int:
        """Ends KILLED the RUNNING children of these trials, whose workers died; how many."""
        closed = 0
        if self.parent_id is None or not numbers:
            return closed
        for run in self._runs(f"tags.`mlflow.parentRunId` = '{self.parent_id}'"):
            if run.info.status == "RUNNING" and int(run.data.tags.get(TRIAL_TAG, -1)) in numbers:
                self.mark_lost(run.info.run_id)
                closed += 1
        return closed

    def mark_lost(self, run_id: str) -> None:
        self.store.set_tags(run_id, {INTERRUPTED_TAG: "true", WORKER_LOST_TAG: "true"})
        self.store.terminate(run_id, "KILLED")

    # ------------------------------------------------------------ helpers

    def _runs(self, filter_string: str, kind: str | None = None) -> list:
        if kind:
            filter_string += f" and tags.`{RUN_KIND_TAG}` = '{kind}'"
        return self.store.search_runs(
            [self.experiment_id], filter_string, ["attributes.start_time DESC"], max_results=10000
        )
