"""The end of a run against an away server waits one window (the README's two minutes, here
shortened), not one per call that must arrive; a server that refuses is not waited for."""

from __future__ import annotations

import inspect
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from cnnlab.tracking import Store, TrackingDenied, TrackingUnavailable
from cnnlab.tracking._tracker import HTTP_SETTINGS, MlflowTracker


def closed_port_uri() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once it is closed


def fit_result():
    """What fit() returns, as on_fit_end reads it."""
    return SimpleNamespace(
        test_loss=0.5, test_accuracy=0.8, best_val_loss=0.5, best_val_accuracy=0.8,
        best_epoch=1, epochs_run=1, seconds=1.0, stop_reason="target", compute=None,
        history=[], test_confusion=[[1]], class_names=["a"],
    )  # fmt: skip


def opened(uri: str, store, patience_s: float) -> MlflowTracker:
    """A tracker whose run was opened while the server was there."""
    tracker = MlflowTracker(
        uri, "cnnlab", params={}, patience_s=patience_s, log_weights=False, store=store
    )
    tracker.run_id = "0" * 32
    return tracker


def end_of_fit(tracker: MlflowTracker) -> None:
    """on_fit_end, then the run's end, as `with tracker: fit(...)` does them."""
    try:
        tracker.on_fit_end(None, fit_result())
    except BaseException as exc:
        tracker.__exit__(type(exc), exc, exc.__traceback__)
        raise
    tracker.__exit__(None, None, None)


@pytest.mark.slow
def test_an_away_server_at_the_end_costs_one_window(monkeypatch, capsys):
    for key, value in HTTP_SETTINGS.items():  # as the tracker sets them when a run opens
        monkeypatch.setenv(key, value)
    uri = closed_port_uri()
    tracker = opened(uri, Store(uri), patience_s=3)
    started = time.monotonic()
    with pytest.raises(TrackingUnavailable) as caught:
        end_of_fit(tracker)  # final metrics, tags, artifacts, then the end status and error tag
    elapsed = time.monotonic() - started
    assert 3 <= elapsed < 4.5, elapsed  # one window for all of them, not one each (12 s and up)
    message = str(caught.value)
    assert "\n" not in message
    assert message.endswith("unreachable for 3s: [Errno 111] Connection refused")


class FlakyStore:
    """Fails every call until `back_at` (a monotonic time), then records them."""

    def __init__(self, back_at: float):
        self.back_at, self.calls = back_at, []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            if time.monotonic() < self.back_at:
                raise ConnectionError("[Errno 111] Connection refused")
            self.calls.append(name)

        return call


@pytest.mark.slow
def test_a_server_back_within_the_window_gets_the_whole_end(capsys):
    store = FlakyStore(back_at=time.monotonic() + 1.5)
    tracker = opened("http://tracking.invalid:5000", store, patience_s=4)
    end_of_fit(tracker)
    assert store.calls[-1] == "terminate" and "log_artifact" in store.calls
    assert tracker._away_since is None  # the next outage gets a fresh window


class RefusingStore:
    def __getattr__(self, name):
        def call(*args, **kwargs):
            raise TrackingDenied("tracking server x: user 'ana' may not log batch (HTTP 403)")

        return call


def test_a_refusal_is_not_retried(capsys):
    tracker = opened("http://tracking.invalid:5000", RefusingStore(), patience_s=60)
    started = time.monotonic()
    with pytest.raises(TrackingDenied, match="HTTP 403"):
        end_of_fit(tracker)
    assert time.monotonic() - started < 1
    with pytest.raises(TrackingDenied):  # nor buffered like an away server's metrics
        tracker.log_metrics({"val_loss": 0.1}, step=1)


def test_the_default_window_is_the_documented_two_minutes():
    assert inspect.signature(MlflowTracker).parameters["patience_s"].default == 120
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "retried for up to two minutes in all" in readme
