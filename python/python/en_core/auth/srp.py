"""AWS Cognito user pools with SRP (reference: ``en_core.auth.srp``), without boto3.

The password never leaves the process: the login proves it with SRP-6a
(``USER_SRP_AUTH``), then renews with the refresh token. ``client_info``'s secret, when
not empty, is used for ``SECRET_HASH``.
"""

from __future__ import annotations

from typing import Any, Callable

from . import _core
from .base import _BuiltIn
from .data import ClientInfo
from .store import FileStore, RedisStore, _spec_of

__all__ = ["SrpAuthorizer", "Challenge"]


class Challenge:
    """A challenge Cognito asks the user to answer after the password proof.

    ``name`` is Cognito's (``SOFTWARE_TOKEN_MFA``, ``NEW_PASSWORD_REQUIRED``, ``SMS_MFA``,
    ``EMAIL_OTP``, ``SELECT_MFA_TYPE``, ``MFA_SETUP``, ``CUSTOM_CHALLENGE``…);
    ``parameters`` its details under Cognito's names (``CODE_DELIVERY_DESTINATION``,
    ``MFAS_CAN_CHOOSE``, ``SECRET_CODE``…). ``repr()`` shows the name only.
    """

    __slots__ = ("name", "parameters")

    def __init__(self, name: str, parameters: dict[str, str]) -> None:
        self.name = name
        self.parameters = parameters

    def __repr__(self) -> str:
        return f"Challenge({self.name!r})"


class SrpAuthorizer(_BuiltIn):
    """Logs ``username`` into the pool ``user_pool_id`` (``<region>_<id>``).

    ``endpoint``: the Cognito API URL (default: the pool's regional endpoint).
    ``use_id_token``: send the ID token instead of the access token.
    ``challenge_handler(challenge) -> str``: answers MFA and new-password challenges.
    """

    def __init__(
        self,
        client_info: ClientInfo,
        user_pool_id: str,
        username: str,
        password: str,
        *,
        endpoint: str | None = None,
        use_id_token: bool = False,
        challenge_handler: Callable[[Challenge], str] | None = None,
        store: FileStore | RedisStore | None = None,
    ) -> None:
        self._options = (user_pool_id, username, password, endpoint, use_id_token, challenge_handler, _spec_of(store))
        super().__init__(client_info)

    def _make_core(self) -> Any:
        pool, username, password, endpoint, use_id_token, handler, store = self._options
        answer = None
        if handler is not None:
            def answer(name: str, parameters: dict[str, str]) -> str:
                return handler(Challenge(name, parameters))
        info = self._client_info
        core = _core.srp(
            info.client_id, info.client_secret, info.api_key, pool, username, password,
            endpoint, use_id_token, answer, store,
        )
        # The password lives in the core only.
        self._options = (pool, username, None, endpoint, use_id_token, handler, store)
        return core

    def __repr__(self) -> str:
        return f"SrpAuthorizer(client_id={self.client_id!r}, user_pool_id={self._options[0]!r})"
