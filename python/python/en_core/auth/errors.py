"""The exceptions of en_core.auth: one class per kind of failure, all of them AuthError.

The kind tells what to do next: retry later (TransportError, ServerError), log in again
(CredentialsRejectedError), fix the set-up (ConfigurationError) or give up. Messages never
hold a secret: they are built from status codes, error codes and endpoints.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigurationError",
    "TransportError",
    "ServerError",
    "CredentialsRejectedError",
    "MalformedResponseError",
    "ChallengeRequiredError",
    "StorageError",
]


class AuthError(Exception):
    """Base class of every error en_core.auth raises. ``kind`` names the failure's kind."""

    kind: str = "Other"


class ConfigurationError(AuthError):
    """The set-up is wrong (a bad URL, an empty client id, plain HTTP to a remote host)."""

    kind = "Configuration"


class TransportError(AuthError):
    """The identity provider could not be reached or did not answer in time."""

    kind = "Transport"


class ServerError(AuthError):
    """The identity provider failed (5xx, or throttling that outlasted the retries)."""

    kind = "Server"


class CredentialsRejectedError(AuthError):
    """The identity provider refused the credentials (invalid_client, a wrong password)."""

    kind = "CredentialsRejected"


class MalformedResponseError(AuthError):
    """An answer that could not be understood, or a token that cannot go in a header."""

    kind = "MalformedResponse"


class ChallengeRequiredError(AuthError):
    """Cognito asked for a challenge (a new password, an MFA code) and no handler answered."""

    kind = "ChallengeRequired"


class StorageError(AuthError):
    """The token store could not be used (I/O, Redis down, a lock held too long)."""

    kind = "Storage"
