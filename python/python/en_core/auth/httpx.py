"""An ``httpx.Auth`` on the same core: the same headers and ``401`` behaviour as ``auth=``
with ``requests``. httpx is optional: this module imports it when it is used.

    import httpx
    from en_core.auth.httpx import HttpxAuth

    client = HttpxAuth(authorizer).install(httpx.Client())
    client.get("https://api.example.com/orders")

httpx drops ``Authorization`` on a redirect to another origin but forwards other headers;
:meth:`HttpxAuth.install` adds a request hook to the client that drops ``X-Api-Key`` (and
the token) from every hop that leaves the origin they were added for. Without it, leave
``follow_redirects`` off when the client information has an API key.
"""

from __future__ import annotations

from typing import Any, Generator

import httpx

from .base import Authorizer, _origin

__all__ = ["HttpxAuth"]

_ORIGIN = "en_core_auth_origin"


class HttpxAuth(httpx.Auth):
    """Puts ``authorizer``'s token (and API key) on httpx requests; a ``401`` to the current
    token costs one renewal (single flight) and one resend."""

    requires_request_body = True  # so that the body can be sent again after a 401

    def __init__(self, authorizer: Authorizer) -> None:
        if not isinstance(authorizer, Authorizer):
            raise TypeError("HttpxAuth takes an en_core.auth Authorizer")
        self._core = authorizer._core

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        sent = self._core.header_value()
        request.headers["Authorization"] = sent
        api_key = self._core.api_key
        if api_key:
            request.headers["X-Api-Key"] = api_key
        request.extensions = {**request.extensions, _ORIGIN: _origin(str(request.url))}
        response = yield request
        if response.status_code != 401:
            self._core.accepted(sent)
            return
        resend_with = self._core.rejected(sent)
        if resend_with is None:
            return
        request.headers["Authorization"] = resend_with
        response = yield request
        if response.status_code != 401:
            self._core.accepted(resend_with)

    def install(self, client: Any) -> Any:
        """Uses this auth for every request of ``client`` (an ``httpx.Client``) and keeps
        credentials with their origin on redirects. Returns the client."""
        client.auth = self
        client.event_hooks["request"] = [*client.event_hooks["request"], _keep_credentials_home]
        return client


def _keep_credentials_home(request: httpx.Request) -> None:
    added_for = request.extensions.get(_ORIGIN)
    if added_for is not None and _origin(str(request.url)) != added_for:
        request.headers.pop("X-Api-Key", None)
        request.headers.pop("Authorization", None)


