"""Where a training run is recorded, as an object: MLflow, or nowhere.

tracking = MlflowTracking(uri)       # or NoTracking(), or a test's recording double
tracking.check()                     # before any data is loaded: a dead server fails fast
with tracking.tracker(RunSpec("cnnlab", params, tags)) as tracker:
    fit(model, splits, cfg.train, callbacks=[tracker])
tracker.run_id                       # None when nothing was recorded
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from cnnlab.tracking._adapter import Store
from cnnlab.tracking._open import check_store
from cnnlab.tracking._store import run_tags
from cnnlab.tracking._tracker import MlflowTracker
from cnnlab.training import Callback


@dataclass(frozen=True)
class RunSpec:
    """What a training run says of itself, whoever records it."""

    experiment: str
    params: dict[str, Any]  # the flattened config and the built model's facts
    tags: dict[str, str]
    artifacts: dict[str, str] = field(default_factory=dict)  # file name -> text
    run_name: str = ""
    parent_run_id: str | None = None
    log_weights: bool = True
    data_checksum: str | None = None
    resume_run_id: str | None = None  # an existing run this one continues (from a checkpoint)
    log_checkpoint: bool = False  # a finished run logs its checkpoint as an artifact


class Tracking(Protocol):
    """A destination of training runs. `tracker(run)` returns a training Callback that is also
    a context manager (it ends the run with the right status) and has `run_id` and
    `logs_folders`: True when its `log_folder(folder, artifact_path)` keeps a local folder with
    the run, which is what logging the run's MLflow model asks of it."""

    uri: str | None  # where the runs go; None when nowhere

    def check(self) -> None:
        """Raises TrackingUnavailable when runs cannot be recorded, TrackingDenied when the
        server refuses the credentials; called before data loads."""
        ...

    def tracker(self, run: RunSpec) -> Callback:
        """The observer of one training run, opened by `with`."""
        ...


class MlflowTracking:
    """Runs go to the MLflow store at `uri`, with cnnlab's self-describing tags."""

    def __init__(self, uri: str, store: Store | None = None):
        self.uri = uri
        self.store = store  # None: each run opens Store(uri); a test gives an in-memory double

    def check(self) -> None:
        check_store(self.uri)  # a server or database that is not there fails in seconds

    def tracker(self, run: RunSpec) -> MlflowTracker:
        """An MlflowTracker for `run`; its tags gain the version, the commit and the data's
        checksum."""
        return MlflowTracker(
            self.uri,
            run.experiment,
            params=run.params,
            tags=run_tags(run.data_checksum, run.tags),
            artifacts=run.artifacts,
            run_name=run.run_name,
            parent_run_id=run.parent_run_id,
            log_weights=run.log_weights,
            store=self.store,
            resume_run_id=run.resume_run_id,
            log_checkpoint=run.log_checkpoint,
        )


class NoTracking:
    """Runs are recorded nowhere: the training is the same, run_id is None."""

    uri: str | None = None

    def check(self) -> None:
        return None

    def tracker(self, run: RunSpec) -> NullTracker:
        return NullTracker()


class NullTracker(Callback):
    """The tracker of a run recorded nowhere: observes nothing, opens and ends nothing."""

    run_id: str | None = None
    logs_folders = False  # nothing is kept, so no model is logged

    def __enter__(self) -> NullTracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        return False  # an exception of the training goes on up
