"""How a client reaches a tracking server: the start-of-run check, and one-line errors for a
server that refuses the client or whose certificate cannot be verified.

    probe("https://tracking:5000")            # within seconds: TrackingUnavailable, TrackingDenied
    client = GuardedClient(MlflowClient(uri), uri)   # its 401/403 answers raise TrackingDenied

Credentials and TLS settings are MLflow's own, read the way its client reads them:
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or the [mlflow] section of
~/.mlflow/credentials; MLFLOW_TRACKING_SERVER_CERT_PATH (a server's certificate or its CA),
MLFLOW_TRACKING_INSECURE_TLS. Messages name the user, never the password.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Iterator
from typing import Any

from cnnlab.tracking._errors import TrackingDenied, TrackingUnavailable

# An authenticated read every user may make: it proves the server answers and takes the
# credentials (a server without --auth answers it to anyone).
CHECK_ENDPOINT = "/api/2.0/mlflow/experiments/search"
REFUSED = (401, 403)
# One try at an answer. A server that refuses the connection fails at once; a live --auth server
# checks the password (a slow hash) before it answers: its first answer took 4.3 s on an idle
# 2-core AMD EPYC, 7 s with the other core busy, so 5 s would call a live server dead.
ANSWER_WITHIN_S = 10.0


def is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


# The user:password@ part of a URI anywhere in a text (https://, postgresql+psycopg://, ...):
# a user name holds no "/" or ":"; a password may hold anything but blanks and quotes, up to the
# word's last "@" (an unencoded "@" or "/" in it must not leave a piece of it shown).
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)([^\s/@:'\"`]*):[^\s'\"`]*@")
# libpq and SQLAlchemy also take credentials as query values (?password=...).
_SECRET_VALUE = re.compile(r"(?i)\b(password|passwd|pwd|secret|token)=[^&;\s'\"`]*")


def shown(text: str) -> str:
    """A URI, or any text that holds URIs (a message, a traceback), as cnnlab shows it: the
    user named, the password starred (https://ana:***@host/), a password=... query value
    too. Every message, report and printed line that names a store goes through this."""
    text = _USERINFO.sub(r"\1\2:***@", text)
    return _SECRET_VALUE.sub(lambda m: f"{m.group(1)}=***", text)


def probe(uri: str, timeout: float = ANSWER_WITHIN_S) -> None:
    """Raises TrackingUnavailable unless an http(s) tracking server answers in time (with a
    certificate the client can verify), TrackingDenied when it refuses the client's
    credentials. One request, no retries: a dead server costs seconds."""
    if not is_remote(uri):
        return
    from mlflow.exceptions import MlflowException
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        response = http_request(
            get_default_host_creds(uri),
            CHECK_ENDPOINT,
            "GET",
            max_retries=0,
            backoff_factor=0,
            timeout=timeout,
            raise_on_status=False,
            params={"max_results": 1},
        )
    except MlflowException as exc:
        raise refusal(exc, uri, "search experiments") or _no_answer(uri, exc) from None
    if response.status_code in REFUSED:
        raise denied(response.status_code, uri, "search experiments")
    if response.status_code != 200:
        raise TrackingUnavailable(
            f"tracking server {shown(uri)} does not answer: HTTP {response.status_code}"
        )


def refusal(exc: BaseException, uri: str, action: str, hint: str | None = None) -> Exception | None:
    """cnnlab's one-line error for an MLflow client error that no retry heals: credentials or a
    permission refused (TrackingDenied; `hint` says how to get the permission), a certificate
    that cannot be verified (TrackingUnavailable); None for any other error."""
    status = _http_status(exc)
    if status in REFUSED:
        return denied(status, uri, action, hint)
    unverified = next((e for e in _chain(exc) if isinstance(e, ssl.SSLCertVerificationError)), None)
    if unverified is not None:
        reason = unverified.verify_message or "verification failed"
        return TrackingUnavailable(
            f"tracking server {shown(uri)} does not answer: its TLS certificate could not be "
            f"verified ({reason}); set MLFLOW_TRACKING_SERVER_CERT_PATH to the server's "
            "certificate (or MLFLOW_TRACKING_INSECURE_TLS=true to skip the check)"
        )
    return None


def denied(status: int, uri: str, action: str, hint: str | None = None) -> TrackingDenied:
    """The one line for an HTTP 401 or 403 answer; it names the user, not the password."""
    from mlflow.utils.credentials import read_mlflow_creds

    user = read_mlflow_creds().username
    where = f"tracking server {shown(uri)}"
    if status == 401 and not user:
        return TrackingDenied(
            f"{where} needs credentials (HTTP 401): set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD, or the [mlflow] section of ~/.mlflow/credentials"
        )
    if status == 401:
        return TrackingDenied(
            f"{where} refused the password of user {user!r} (HTTP 401): check "
            "MLFLOW_TRACKING_PASSWORD or ~/.mlflow/credentials"
        )
    hint = hint or f"an admin grants it: cnnlab server grant {user} EXPERIMENT EDIT"
    return TrackingDenied(f"{where}: user {user!r} may not {action} (HTTP 403); {hint}")


class GuardedClient:
    """An MlflowClient of a server whose refusals raise cnnlab's one-line errors (see refusal);
    every other attribute and error is the client's own."""

    def __init__(self, client: Any, uri: str):
        self._client = client
        self._uri = uri

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        return self._guarded(attr, name.replace("_", " ")) if callable(attr) else attr

    def _guarded(self, call: Callable, action: str) -> Callable:
        def guarded(*args, **kwargs):
            try:
                return call(*args, **kwargs)
            except Exception as exc:  # re-raised as itself unless it is a refusal
                error = refusal(exc, self._uri, action)
                if error is None:
                    raise
                raise error from None

        return guarded


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status an MLflow client error stands for, where it stands for a refusal."""
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException) and exc.error_code in (
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
    ):
        return exc.get_http_status_code()
    response = getattr(exc, "response", None)  # requests' HTTPError: artifact up/downloads
    return getattr(response, "status_code", None)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The error and the errors it was raised from or while handling, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def reason(exc: BaseException) -> str:
    """What went wrong underneath an MLflow client error, in one line ("[Errno 111] Connection
    refused" rather than the request's whole retry story)."""
    *_, innermost = _chain(exc)
    return (str(innermost).strip().splitlines() or [type(innermost).__name__])[0][:300]


def _no_answer(uri: str, exc: BaseException) -> TrackingUnavailable:
    return TrackingUnavailable(
        f"tracking server {shown(uri)} does not answer: {shown(reason(exc))}"
    )
