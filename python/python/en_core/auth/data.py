"""Data structures (reference: ``en_core.auth.data``)."""

from __future__ import annotations

import datetime

__all__ = ["ClientInfo", "Token"]


class ClientInfo:
    """The id and secret of a client, and an optional API key sent as ``X-Api-Key``.

    ``repr()`` and ``str()`` show the client id only::

        >>> ClientInfo("my-client", "s3cret", api_key="k")
        ClientInfo(client_id='my-client', client_secret=<redacted>, api_key=<redacted>)
    """

    __slots__ = ("_client_id", "_client_secret", "_api_key")

    def __init__(self, client_id: str, client_secret: str, api_key: str = "") -> None:
        for name, value in (("client_id", client_id), ("client_secret", client_secret), ("api_key", api_key)):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str")
        self._client_id = client_id
        self._client_secret = client_secret
        self._api_key = api_key

    @property
    def client_id(self) -> str:
        """The client id."""
        return self._client_id

    @property
    def client_secret(self) -> str:
        """The client secret ("" for a public client). Never logged or shown."""
        return self._client_secret

    @property
    def api_key(self) -> str:
        """The API key ("" when there is none). Never logged or shown."""
        return self._api_key

    def __repr__(self) -> str:
        secret = "<redacted>" if self._client_secret else "''"
        key = "<redacted>" if self._api_key else "''"
        return f"ClientInfo(client_id={self._client_id!r}, client_secret={secret}, api_key={key})"

    __str__ = __repr__


class Token:
    """A token as the built-in authorizers return it. ``repr()`` redacts every token."""

    __slots__ = ("access_token", "refresh_token", "id_token", "token_type", "expires_at")

    def __init__(
        self,
        access_token: str,
        *,
        expires_in: float | None = None,
        refresh_token: str | None = None,
        id_token: str | None = None,
        token_type: str = "Bearer",
        expires_at: datetime.datetime | float | None = None,
    ) -> None:
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.id_token = id_token
        self.token_type = token_type
        if expires_in is not None:
            expires_at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=expires_in)
        elif isinstance(expires_at, (int, float)):
            expires_at = datetime.datetime.fromtimestamp(expires_at, datetime.timezone.utc)
        self.expires_at: datetime.datetime | None = expires_at

    @property
    def expired(self) -> bool:
        """Whether the expiry has passed (never, when the token has no expiry)."""
        return self.expires_at is not None and self.expires_at <= datetime.datetime.now(datetime.timezone.utc)

    def __repr__(self) -> str:
        parts = [f"token_type={self.token_type!r}", "access_token=<redacted>"]
        if self.refresh_token is not None:
            parts.append("refresh_token=<redacted>")
        if self.id_token is not None:
            parts.append("id_token=<redacted>")
        parts.append(f"expires_at={self.expires_at!r}")
        return f"Token({', '.join(parts)})"

    __str__ = __repr__
