"""A server's refusals as one line each: 401 and 403 are TrackingDenied naming the user and never
the password, an unverifiable certificate is TrackingUnavailable; other errors stay as they are.
(tests/team/ meets a real auth server; these pin the mapping itself.)"""

from __future__ import annotations

import ssl

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, UNAUTHENTICATED

from cnnlab.tracking import TrackingDenied, TrackingUnavailable, shown
from cnnlab.tracking._access import GuardedClient
from cnnlab.tracking._store import client

URI = "https://tracking.lab:5000"
SECRET = "s3cret-password-of-ana"


class Raising:
    """An MlflowClient stand-in whose every call raises `error`."""

    def __init__(self, error: BaseException):
        self.error = error
        self.tracking_uri = URI

    def create_run(self, *args, **kwargs):
        raise self.error


@pytest.fixture
def ana(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ana")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SECRET)


def refused(error: BaseException) -> BaseException:
    with pytest.raises(Exception) as caught:
        GuardedClient(Raising(error), URI).create_run("1")
    assert "\n" not in str(caught.value) and SECRET not in str(caught.value)
    return caught.value


def test_a_missing_permission_names_the_user_and_the_action(ana):
    error = refused(MlflowException("Permission denied", error_code=PERMISSION_DENIED))
    assert isinstance(error, TrackingDenied)
    assert str(error).startswith(f"tracking server {URI}: user 'ana' may not create run (HTTP 403)")
    assert "cnnlab server grant ana EXPERIMENT EDIT" in str(error)


def test_a_wrong_password_and_no_credentials_are_told_apart(ana, monkeypatch):
    unauthenticated = MlflowException("You are not authenticated", error_code=UNAUTHENTICATED)
    assert "refused the password of user 'ana' (HTTP 401)" in str(refused(unauthenticated))
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    monkeypatch.setenv("HOME", "/nonexistent")  # no ~/.mlflow/credentials either
    assert "needs credentials (HTTP 401)" in str(refused(unauthenticated))


def test_an_artifact_upload_refused_is_denied_too(ana):
    response = requests.Response()
    response.status_code = 403
    error = refused(requests.HTTPError("403 Client Error: Forbidden", response=response))
    assert isinstance(error, TrackingDenied)


def test_an_unverifiable_certificate_says_so():
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "self-signed certificate"
    try:
        try:
            raise cause
        except ssl.SSLError as exc:
            raise requests.exceptions.SSLError(exc) from exc
    except requests.exceptions.SSLError:
        error = refused(MlflowException("API request failed with exception SSLError"))
    assert isinstance(error, TrackingUnavailable)
    assert "TLS certificate could not be verified (self-signed certificate)" in str(error)
    assert "MLFLOW_TRACKING_SERVER_CERT_PATH" in str(error)


def test_other_errors_pass_through_unchanged(ana):
    original = MlflowException("RESOURCE_DOES_NOT_EXIST: no such run")
    assert refused(original) is original


@pytest.mark.slow
def test_only_a_servers_client_is_guarded(tmp_path):
    assert isinstance(client("http://127.0.0.1:1"), GuardedClient)
    assert not isinstance(client(f"sqlite:///{tmp_path}/mlflow.db"), GuardedClient)


def test_messages_show_a_uri_without_its_user_and_password():
    assert (
        shown("https://ana:pw@tracking.lab:5000/mlflow")
        == "https://ana:***@tracking.lab:5000/mlflow"
    )
    assert shown(URI) == URI and shown("sqlite:///runs/mlflow.db") == "sqlite:///runs/mlflow.db"
