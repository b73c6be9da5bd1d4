"""OAuth2 (reference: ``en_core.auth.oauth2``): client credentials, refresh tokens, browser
and device logins, each a :class:`~en_core.auth.base.Authorizer`.

Every one reuses its token, renews it ahead of expiry (single flight across threads and,
with ``store=``, across processes), recovers from a ``401`` with one renewal and one resend,
and sends credentials to token endpoints over HTTPS only (loopback excepted).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from . import _core
from .base import _BuiltIn
from .data import ClientInfo
from .store import FileStore, RedisStore, _spec_of

__all__ = ["ClientCredentials", "RefreshToken", "AuthorizationCode", "DeviceCode", "DevicePrompt"]


def _scopes(scopes: Iterable[str] | None) -> list[str]:
    if scopes is None:
        return []
    if isinstance(scopes, str):
        return scopes.split()
    return [str(scope) for scope in scopes]


class ClientCredentials(_BuiltIn):
    """The client-credentials grant (RFC 6749 §4.4) at ``token_url``.

    ``parameters``: extra form fields for the token request, such as ``{"audience": …}``.
    """

    def __init__(
        self,
        client_info: ClientInfo,
        token_url: str | None = None,
        *,
        scopes: Iterable[str] | None = None,
        store: FileStore | RedisStore | None = None,
        parameters: dict[str, str] | None = None,
        issuer: str | None = None,
    ) -> None:
        self._options = (token_url, issuer, _scopes(scopes), _spec_of(store), sorted((parameters or {}).items()))
        super().__init__(client_info)

    def _make_core(self) -> Any:
        token_url, issuer, scopes, store, parameters = self._options
        info = self._client_info
        return _core.client_credentials(
            info.client_id, info.client_secret, info.api_key, token_url, issuer, scopes, store, parameters
        )

    @classmethod
    def discover(cls, client_info: ClientInfo, issuer_url: str, **options: Any) -> "ClientCredentials":
        """The token endpoint found in ``issuer_url``'s metadata (RFC 8414 / OpenID)."""
        return cls(client_info, None, issuer=issuer_url, **options)


class RefreshToken(_BuiltIn):
    """Trades a refresh token for access tokens (RFC 6749 §6), keeping a rotated one."""

    def __init__(
        self,
        client_info: ClientInfo,
        token_url: str,
        refresh_token: str,
        *,
        scopes: Iterable[str] | None = None,
        store: FileStore | RedisStore | None = None,
    ) -> None:
        self._options = (token_url, refresh_token, _scopes(scopes), _spec_of(store))
        super().__init__(client_info)

    def _make_core(self) -> Any:
        token_url, refresh_token, scopes, store = self._options
        info = self._client_info
        return _core.refresh_token(
            info.client_id, info.client_secret, info.api_key, token_url, refresh_token, scopes, store
        )


class AuthorizationCode(_BuiltIn):
    """A person's login in the browser (RFC 6749 §4.1 with PKCE, loopback redirect per
    RFC 8252). ``browser(url)`` opens the URL (default: the system's browser, and the URL
    printed to stderr)."""

    def __init__(
        self,
        client_info: ClientInfo,
        authorization_url: str | None = None,
        token_url: str | None = None,
        *,
        scopes: Iterable[str] | None = None,
        redirect_uri: str | None = None,
        browser: Callable[[str], None] | None = None,
        store: FileStore | RedisStore | None = None,
        use_id_token: bool = False,
        issuer: str | None = None,
    ) -> None:
        self._options = (
            authorization_url, token_url, issuer, _scopes(scopes), redirect_uri, browser, _spec_of(store), use_id_token
        )
        super().__init__(client_info)

    def _make_core(self) -> Any:
        authorization_url, token_url, issuer, scopes, redirect_uri, browser, store, use_id_token = self._options
        info = self._client_info
        return _core.authorization_code(
            info.client_id, info.client_secret, info.api_key, authorization_url, token_url, issuer,
            scopes, redirect_uri, browser, store, use_id_token,
        )

    @classmethod
    def discover(cls, client_info: ClientInfo, issuer_url: str, **options: Any) -> "AuthorizationCode":
        """The endpoints found in ``issuer_url``'s metadata (RFC 8414 / OpenID)."""
        return cls(client_info, None, None, issuer=issuer_url, **options)


class DevicePrompt:
    """What to show the person during a device login (RFC 8628 §3.3)."""

    __slots__ = ("verification_uri", "verification_uri_complete", "user_code")

    def __init__(self, verification_uri: str, verification_uri_complete: str | None, user_code: str) -> None:
        self.verification_uri = verification_uri
        self.verification_uri_complete = verification_uri_complete
        self.user_code = user_code

    def __repr__(self) -> str:
        return f"DevicePrompt(verification_uri={self.verification_uri!r}, user_code={self.user_code!r})"


class DeviceCode(_BuiltIn):
    """A person's login on another device (RFC 8628). ``prompt(DevicePrompt)`` shows the
    URL and code (default: printed to stderr); Ctrl-C ends the wait."""

    def __init__(
        self,
        client_info: ClientInfo,
        device_authorization_url: str | None = None,
        token_url: str | None = None,
        *,
        scopes: Iterable[str] | None = None,
        prompt: Callable[[DevicePrompt], None] | None = None,
        store: FileStore | RedisStore | None = None,
        use_id_token: bool = False,
        issuer: str | None = None,
    ) -> None:
        self._options = (
            device_authorization_url, token_url, issuer, _scopes(scopes), prompt, _spec_of(store), use_id_token
        )
        super().__init__(client_info)

    def _make_core(self) -> Any:
        device_url, token_url, issuer, scopes, prompt, store, use_id_token = self._options
        shown = None
        if prompt is not None:
            def shown(uri: str, complete: str | None, code: str) -> None:
                prompt(DevicePrompt(uri, complete, code))
        info = self._client_info
        return _core.device_code(
            info.client_id, info.client_secret, info.api_key, device_url, token_url, issuer,
            scopes, shown, store, use_id_token,
        )

    @classmethod
    def discover(cls, client_info: ClientInfo, issuer_url: str, **options: Any) -> "DeviceCode":
        """The endpoints found in ``issuer_url``'s metadata (RFC 8414 / OpenID)."""
        return cls(client_info, None, None, issuer=issuer_url, **options)
