"""Authentication and authorization for ``requests`` (reference: ``en_core.auth``).

Hand an authorizer your credentials once and pass it as ``auth=``; it gets the first
token, reuses it, renews it ahead of expiry, recovers when the server rejects it, and never
shows a secret::

    import requests
    from en_core.auth import ClientInfo
    from en_core.auth.oauth2 import ClientCredentials

    auth = ClientCredentials(ClientInfo("my-client", "my-secret"), "https://idp.example.com/oauth2/token")
    requests.get("https://api.example.com/orders", auth=auth)

The work is done by the Rust crate ``en-core-auth``: single flight across threads and
processes, back-off after failures, typed errors, SRP for Cognito without an AWS SDK.
"""

from __future__ import annotations

from ._core import __version__
from .base import Authorizer
from .data import ClientInfo, Token
from .errors import (
    AuthError,
    ChallengeRequiredError,
    ConfigurationError,
    CredentialsRejectedError,
    MalformedResponseError,
    ServerError,
    StorageError,
    TransportError,
)

__all__ = [
    "__version__",
    "Authorizer",
    "ClientInfo",
    "Token",
    "AuthError",
    "ConfigurationError",
    "TransportError",
    "ServerError",
    "CredentialsRejectedError",
    "MalformedResponseError",
    "ChallengeRequiredError",
    "StorageError",
]
