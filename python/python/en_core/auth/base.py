"""Base classes (reference: ``en_core.auth.base``).

:class:`Authorizer` is the target of ``requests``' ``auth=`` parameter. Its subclasses say
how a token is obtained (:meth:`~Authorizer.authorize`), when it must no longer be used
(:meth:`~Authorizer.expired`) and how it is renewed (:meth:`~Authorizer.refresh`); the Rust
core decides when to call them: once for the first token however many threads start at
once, again ahead of expiry, again after a ``401``, with a back-off after failures.
"""

from __future__ import annotations

import abc
from typing import Any
from urllib.parse import urljoin, urlsplit

from . import _core
from .data import ClientInfo, Token

__all__ = ["Authorizer"]

_REDIRECTS = (301, 302, 303, 307, 308)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Authorizer(abc.ABC):
    """Obtains, reuses and renews tokens, and puts them on ``requests``' requests.

    This is an abstract class: use one of the provided authorizers
    (:mod:`en_core.auth.oauth2`, :mod:`en_core.auth.srp`) or derive your own, implementing
    :meth:`authorize`, :meth:`expired` and :meth:`refresh`::

        class LicenseServer(Authorizer):
            def authorize(self):
                return fetch_token(self.client_id)       # any object with .access_token
            def expired(self, token):
                return token.expires_at <= time.time()
            def refresh(self, token):
                return self.authorize()

        requests.get(url, auth=LicenseServer(ClientInfo("me", "secret")))

    Subclasses may take more constructor parameters; they must call
    ``super().__init__(client_info)``.
    """

    def __init__(self, client_info: ClientInfo) -> None:
        if not isinstance(client_info, ClientInfo):
            raise TypeError("client_info must be an en_core.auth.data.ClientInfo")
        self._client_info = client_info
        self._core = self._make_core()

    def _make_core(self) -> Any:
        """The Rust lifecycle behind this authorizer; built-in authorizers override it."""
        info = self._client_info
        return _core.subclass_core(self, info.client_id, info.client_secret, info.api_key)

    # The abstract interface of the reference.

    @abc.abstractmethod
    def authorize(self) -> Any:
        """Returns a new token: an object with an ``access_token`` attribute (str).

        It may carry its expiry as ``expires_in`` (seconds from now) or ``expires_at`` (an
        aware ``datetime`` or POSIX seconds); the core then renews ahead of it. The object
        is what :meth:`expired` and :meth:`refresh` get back, so it may carry your own
        fields (a refresh token). Exceptions raised here reach the caller.
        """

    @abc.abstractmethod
    def expired(self, token: Any) -> bool:
        """Whether ``token`` (an object :meth:`authorize` or :meth:`refresh` returned) has
        expired. Called before each use: keep it cheap, no network calls."""

    @abc.abstractmethod
    def refresh(self, token: Any) -> Any:
        """Returns a renewed token for ``token`` (same contract as :meth:`authorize`)."""

    # What the base class provides.

    def __call__(self, request: Any) -> Any:
        """Adds ``Authorization`` (and ``X-Api-Key`` when the client information has one) to
        a ``requests`` request, and a response hook that answers a ``401`` to the current
        token with one renewal and one resend. Returns the request."""
        request.headers["Authorization"] = self._core.header_value()
        api_key = self._core.api_key
        if api_key:
            request.headers["X-Api-Key"] = api_key
        hooks = request.hooks["response"]
        if self._on_response not in hooks:  # auth applied again to the same request
            hooks.append(self._on_response)
        body = getattr(request, "body", None)
        if body is not None and hasattr(body, "read"):
            try:
                request._en_core_auth_body_at = body.tell()
            except (AttributeError, OSError, ValueError):
                request._en_core_auth_body_at = None
        return request

    @property
    def access_token(self) -> str:
        """The current access token, obtained or renewed first if needed."""
        return self._core.access_token()

    @property
    def client_id(self) -> str:
        """The client id of the client information."""
        return self._client_info.client_id

    def invalidate(self) -> None:
        """Marks the current token as unusable: the next use renews it."""
        self._core.invalidate()

    def revoke(self) -> None:
        """Logs out: revokes the token at the server where the authorizer can (RFC 7009,
        Cognito RevokeToken), forgets it and clears the token store."""
        self._core.revoke()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id!r})"

    __str__ = __repr__

    # The response hook.

    def _on_response(self, response: Any, **kwargs: Any) -> Any:
        request = response.request
        sent = request.headers.get("Authorization")
        if response.status_code in _REDIRECTS and "location" in response.headers:
            self._keep_credentials_home(request, response)
            return response
        if sent is None:
            return response
        if response.status_code != 401:
            self._core.accepted(sent)
            return response
        if getattr(request, "_en_core_auth_resent", False):
            return response
        if not self._rewind(request):
            return response
        resend_with = self._core.rejected(sent)
        if resend_with is None:
            return response
        return self._resend(response, resend_with, **kwargs)

    def _resend(self, response: Any, resend_with: str, **kwargs: Any) -> Any:
        from requests.cookies import extract_cookies_to_jar

        response.content  # noqa: B018 - read the body so the connection can be reused
        response.close()
        retry = response.request.copy()
        extract_cookies_to_jar(retry._cookies, response.request, response.raw)
        retry.prepare_cookies(retry._cookies)
        retry.headers["Authorization"] = resend_with
        retry._en_core_auth_resent = True
        answer = response.connection.send(retry, **kwargs)
        answer.history.append(response)
        answer.request = retry
        if answer.status_code != 401:
            self._core.accepted(resend_with)
        return answer

    @staticmethod
    def _rewind(request: Any) -> bool:
        """Whether the request's body can be sent again (rewinding a file-like body)."""
        body = getattr(request, "body", None)
        if body is None or isinstance(body, (bytes, str)):
            return True
        if not hasattr(body, "read"):
            return False  # a generator: gone once sent
        position = getattr(request, "_en_core_auth_body_at", None)
        if position is None:
            return False
        try:
            body.seek(position)
        except (AttributeError, OSError, ValueError):
            return False
        return True

    @staticmethod
    def _keep_credentials_home(request: Any, response: Any) -> None:
        """Credentials go only to the origin they were added for: ``requests`` drops
        ``Authorization`` on a redirect to another host but forwards every other header, so
        the API key (and, for another port or scheme, the token) is dropped here from the
        request ``requests`` copies for the next hop."""
        target = urljoin(response.url, response.headers["location"])
        if _origin(target) != _origin(request.url):
            request.headers.pop("X-Api-Key", None)
            request.headers.pop("Authorization", None)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def _token_from_core(fields: dict[str, Any]) -> Token:
    return Token(
        fields["access_token"],
        refresh_token=fields["refresh_token"],
        id_token=fields["id_token"],
        token_type=fields["token_type"],
        expires_at=fields["expires_at"],
    )


class _BuiltIn(Authorizer):
    """An authorizer whose authorize/expired/refresh are the Rust core's own."""

    def authorize(self) -> Token:
        """The current token (obtained first if needed), as the core holds it."""
        return _token_from_core(self._core.token())

    def expired(self, token: Any) -> bool:
        """Whether ``token``'s expiry has passed."""
        return bool(getattr(token, "expired", False))

    def refresh(self, token: Any) -> Token:
        """Renews the token now and returns the new one."""
        self._core.invalidate()
        return self.authorize()
