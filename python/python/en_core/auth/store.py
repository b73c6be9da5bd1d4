"""Where tokens are kept between processes (gunicorn workers, cron runs, a fleet).

Pass a store as ``store=`` to any built-in authorizer. Entries are keyed by the
authorizer's credential set (grant, endpoint, client, user, scopes), so one store serves
many authorizers and never hands one's token to another; nobody builds keys by hand.
Stores never hold a client secret or a password.
"""

from __future__ import annotations

import os

__all__ = ["FileStore", "RedisStore"]


class FileStore:
    """Files in ``directory`` (default ``~/.cache/en-core-auth``, created 0700), shared by
    every process of the user: one token request however many processes start at once."""

    __slots__ = ("_directory",)

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._directory = None if directory is None else os.fspath(directory)

    @property
    def directory(self) -> str | None:
        """The directory, or None for the default."""
        return self._directory

    def _spec(self) -> tuple[str, str | None]:
        return ("file", self._directory)

    def __repr__(self) -> str:
        return f"FileStore({self._directory!r})"


class RedisStore:
    """One token for every process on every machine, in Redis or Valkey
    (``redis://`` or ``rediss://``). ``repr()`` never shows the URL's password."""

    __slots__ = ("_url",)

    def __init__(self, url: str) -> None:
        if not isinstance(url, str):
            raise TypeError("url must be a str")
        self._url = url

    def _spec(self) -> tuple[str, str]:
        return ("redis", self._url)

    def __repr__(self) -> str:
        return "RedisStore(<url redacted>)"


def _spec_of(store: object) -> tuple[str, str | None] | None:
    if store is None:
        return None
    if isinstance(store, (FileStore, RedisStore)):
        return store._spec()
    raise TypeError("store= takes an en_core.auth.store.FileStore or RedisStore")
