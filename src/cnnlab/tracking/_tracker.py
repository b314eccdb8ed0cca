"""MLflow as an observer of training: one run, its params, per-epoch metrics and artifacts.

tracker = MlflowTracker(uri, "cnnlab", params=flatten(cfg), artifacts={...})
with tracker:                      # FINISHED, FAILED on an exception, KILLED on an interrupt
    fit(model, splits, cfg.train, callbacks=[tracker])
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from cnnlab._cache import cache_root
from cnnlab._signals import shielded
from cnnlab.tracking._access import reason, shown
from cnnlab.tracking._adapter import METRICS_PER_BATCH, Measurement, Store, measurements
from cnnlab.tracking._curves import learning_curves_svg
from cnnlab.tracking._errors import TrackingDenied, TrackingUnavailable
from cnnlab.tracking._store import store_file
from cnnlab.tracking.tags import COMPUTE_TAG, ERROR_TAG, STOP_REASON_TAG, TRACKING_GAP_TAG
from cnnlab.training import Callback, EpochMetrics, TrainState

CONFUSION_ARTIFACT = "test_confusion.json"  # {"class_names": [...], "matrix": [[true][pred]]}
# Per request against a server: fail fast, so a dead server costs seconds, not MLflow's minutes
# (its default retries back off for minutes inside each of _must's attempts). One quick retry
# rides out a blip; an attempt then lasts two request timeouts at most.
HTTP_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
_RETRY_EVERY = 2.0  # seconds between attempts of a call that must arrive
CHECKPOINT = "last.pt"  # a run's checkpoint file in its checkpoint_dir


def checkpoint_dir(uri: str, run_id: str) -> Path:
    """Where a run's checkpoint is kept: beside an embedded store's database, else (a server)
    in the user cache; <that>/checkpoints/<run id>."""
    found = store_file(uri)
    return (found.parent if found is not None else cache_root()) / "checkpoints" / run_id


def checkpoint_file(uri: str, run_id: str) -> Path:
    """A run's checkpoint: <folder of mlflow.db>/checkpoints/<run id>/last.pt; a server's runs
    keep theirs in the user cache. Written after every epoch, deleted when the run finishes."""
    return checkpoint_dir(uri, run_id) / CHECKPOINT


class MlflowTracker(Callback):
    logs_folders = True  # log_folder() keeps a folder with the run: an MLflow model can go there

    def __init__(
        self,
        uri: str,
        experiment: str,
        *,
        params: dict[str, Any],
        tags: dict[str, str] | None = None,
        artifacts: dict[str, str] | None = None,
        run_name: str = "",
        parent_run_id: str | None = None,
        log_weights: bool = True,
        patience_s: float = 120.0,
        store: Store | None = None,
        resume_run_id: str | None = None,
        log_checkpoint: bool = False,
    ):
        """One run of `experiment` at `uri`, opened by start() or `with`.

        Args:
            params: logged as the run's params (lists and booleans as JSON).
            tags: the run's tags; artifacts: {file name: text} logged when the run opens.
            run_name: MLflow's own name when empty. parent_run_id: nests the run.
            log_weights: the trained state_dict as model/state_dict.pt.
            patience_s: how long calls that must reach a server retry before giving up: one
                window for the whole outage, however many such calls wait in it.
            store: where to log (default: a Store on `uri`, opened at start).
            resume_run_id: an existing run to continue: reopened RUNNING, its params and
                opening artifacts not logged again (they are the same), its tags updated.
            log_checkpoint: a FINISHED run logs its checkpoint (checkpoint_dir) as
                checkpoint/last.pt before the local file is deleted.
        """
        self.uri = uri
        self.experiment = experiment
        self.params = params
        self.tags = dict(tags or {})
        self.artifacts = artifacts or {}
        self.run_name = run_name or None
        self.parent_run_id = parent_run_id
        self.log_weights = log_weights
        self.patience_s = patience_s  # how long must-arrive calls retry against a server
        self._away_since: float | None = None  # when must-arrive calls began to fail
        self._gone: str | None = None  # why the tracker gave up on the server, once it has
        self.remote = uri.startswith(("http://", "https://"))
        self.store = store
        self.run_id: str | None = None
        self.resume_run_id = resume_run_id
        self.log_checkpoint = log_checkpoint
        self.pending: list[Measurement] = []  # metrics not yet accepted by the server
        self.late_epochs: list[int] = []
        self._gap_tagged = ""  # the late epochs already named in the gap tag

    # ------------------------------------------------------------ lifecycle

    def start(self) -> str:
        with shielded():  # creating the store and the run: a commit must not be cut in half
            return self._open()

    def _open(self) -> str:
        if self.remote:
            for key, value in HTTP_SETTINGS.items():
                os.environ.setdefault(key, value)
        if self.store is None:
            self.store = Store(self.uri)
        if self.resume_run_id:
            self.run_id = self.resume_run_id
            self.store.reopen(self.run_id)
            self.store.set_tags(self.run_id, self.tags)
            return self.run_id
        exp_id = self.store.ensure_experiment(self.experiment)
        run = self.store.create_run(exp_id, self.run_name, self.tags, self.parent_run_id)
        self.run_id = run.info.run_id
        self.store.log_params(self.run_id, self.params)
        self.store.log_texts(self.run_id, self.artifacts)
        return self.run_id

    def end(self, status: str = "FINISHED", error: str | None = None) -> None:
        if self.run_id is None:
            return
        self._must(self._flush)
        if error:
            self._must(self.store.set_tags, self.run_id, {ERROR_TAG: error[:5000]})
        # A run cut short keeps its checkpoint to be resumed from; a finished one needs it no more.
        folder = checkpoint_dir(self.uri, self.run_id)
        if status == "FINISHED" and self.log_checkpoint and (folder / CHECKPOINT).is_file():
            self._must(self.store.log_artifact, self.run_id, folder / CHECKPOINT, "checkpoint")
        self._must(self.store.terminate, self.run_id, status)
        if status == "FINISHED":
            shutil.rmtree(folder, ignore_errors=True)

    def __enter__(self) -> MlflowTracker:
        try:
            self.start()
        except BaseException as exc:
            # Interrupted (or failed) while opening: a half-opened run must not stay RUNNING.
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            self.end("FINISHED")
        elif isinstance(exc, KeyboardInterrupt):
            self.end("KILLED", error=type(exc).__name__)
        else:
            self.end("FAILED", error=f"{type(exc).__name__}: {exc}")
        return False

    # ------------------------------------------------------------ callback hooks

    def on_epoch_end(self, state: TrainState, metrics: EpochMetrics) -> None:
        values = metrics.as_dict()
        values["epoch_seconds"] = values.pop("seconds")
        self.log_metrics(values, step=metrics.epoch)

    def on_fit_end(self, state: TrainState, result: Any) -> None:
        final = {
            "test_loss": result.test_loss,
            "test_accuracy": result.test_accuracy,
            "best_val_loss": result.best_val_loss,
            "best_val_accuracy": result.best_val_accuracy,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "train_seconds": result.seconds,
        }
        # A pruned trial was never tested: no test metric rather than a NaN one.
        final = {k: v for k, v in final.items() if not (k.startswith("test_") and v != v)}
        self.log_metrics(final, step=result.epochs_run)
        self._must(self._flush)
        if result.stop_reason:
            self._must(self.store.set_tags, self.run_id, {STOP_REASON_TAG: result.stop_reason})
        # How the run actually trained, which the config alone does not say (the hardware decides).
        if result.compute is not None:
            how = result.compute.describe()
            self._must(self.store.set_tags, self.run_id, {COMPUTE_TAG: how})
        with tempfile.TemporaryDirectory() as tmp:
            curves = Path(tmp) / "learning_curves.svg"
            curves.write_text(learning_curves_svg(result.history, self.run_name or ""))
            self._must(self.store.log_artifact, self.run_id, curves)
            history = Path(tmp) / "history.json"
            history.write_text(json.dumps([vars(m) for m in result.history], indent=1))
            self._must(self.store.log_artifact, self.run_id, history)
            if result.test_confusion is not None:  # so a report reads it, and runs no model
                confusion = Path(tmp) / CONFUSION_ARTIFACT
                table = {"class_names": result.class_names, "matrix": result.test_confusion}
                confusion.write_text(json.dumps(table))
                self._must(self.store.log_artifact, self.run_id, confusion)
            if self.log_weights:
                self._log_weights(state.model, Path(tmp))

    # ------------------------------------------------------------ helpers

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        """Logs `values` at `step`; against an away server they wait in `pending` instead."""
        self.pending += measurements(values, step)
        if not self.remote:
            with shielded():
                self._flush()  # an embedded store's errors are real errors: let them raise
            return
        try:
            with shielded():
                self._flush()
        except TrackingDenied:
            raise  # the server answers and refuses: buffering would not help
        except Exception as exc:  # the server is away: keep the metrics, go on training
            if not self.late_epochs:
                print(
                    f"cnnlab: warning: tracking server away, buffering metrics ({reason(exc)})",
                    file=sys.stderr,
                )
            self.late_epochs.append(step)

    def _flush(self) -> None:
        """Sends buffered metrics in order; on success notes any gap they covered."""
        while self.pending:
            chunk = self.pending[:METRICS_PER_BATCH]  # one call: accepted whole or not at all
            self.store.log_measurements(self.run_id, chunk)
            del self.pending[: len(chunk)]
        late = ", ".join(map(str, sorted(set(self.late_epochs))))
        if late and late != self._gap_tagged:
            text = f"metrics of epochs {late} were buffered while the server was unreachable"
            self.store.set_tags(self.run_id, {TRACKING_GAP_TAG: text})
            self._gap_tagged = late

    def _must(self, call, *args, **kwargs):
        """Calls that must reach a server are retried until the outage has lasted `patience_s`.
        The window is the outage's, not the call's: the calls after the first failing one wait
        in what is left of it, and once it is spent every later call gives up at once."""
        if not self.remote:
            with shielded():
                return call(*args, **kwargs)
        while self._gone is None:
            try:
                with shielded():  # each attempt, not the waits between them
                    result = call(*args, **kwargs)
            except TrackingDenied:
                raise  # a refusal is an answer: retrying does not change it
            except Exception as exc:  # an outage has many faces; the window decides, then raises
                self._wait_or_give_up(exc)
            else:
                self._away_since = None
                return result
        raise TrackingUnavailable(self._gone) from None

    def _wait_or_give_up(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._away_since is None:
            self._away_since = now
        left = self._away_since + self.patience_s - now
        if left > 0:
            time.sleep(min(_RETRY_EVERY, left))
            return
        self._gone = (
            f"tracking server {shown(self.uri)} unreachable for {self.patience_s:.0f}s: "
            + reason(exc)
        )

    def log_folder(self, folder: Path, artifact_path: str) -> None:
        """Uploads a local folder into the open run's artifacts, as a must-arrive call."""
        self._must(self.store.log_artifacts, self.run_id, folder, artifact_path)

    def _log_weights(self, model: torch.nn.Module, tmp: Path) -> None:
        path = tmp / "state_dict.pt"
        weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(weights, path)
        self._must(self.store.log_artifact, self.run_id, path, "model")
