"""The two ways a tracking server fails a client, each a one-line message with its own exit code.

TrackingUnavailable: the server does not answer, or its TLS certificate cannot be verified (5).
TrackingDenied: the server answers and refuses: credentials (HTTP 401), permission (HTTP 403) (7).
Neither message holds a password.
"""


class TrackingUnavailable(RuntimeError):
    """The tracking server does not answer; the message is one line naming it."""


class TrackingDenied(RuntimeError):
    """The tracking server refuses this client's credentials or lacks a permission for it; the
    message is one line naming the server and the user, never the password. Retrying does not
    help, so callers that retry an away server give up at once on this."""
