"""Secrets never show: repr(), str(), exception messages, logging."""

from __future__ import annotations

import logging

import pytest

from en_core.auth import AuthError, ClientInfo, Token
from en_core.auth.oauth2 import ClientCredentials
from en_core.auth.srp import SrpAuthorizer

SECRET, KEY, PASSWORD = "s3cret-value", "api-key-value", "Passw0rd!"


def test_repr_and_str_redact(idp):
    info = ClientInfo("app", SECRET, KEY)
    cc = ClientCredentials(ClientInfo("app", "app-secret", KEY), idp.token_url)
    token = Token("access-value", refresh_token="refresh-value", id_token="id-value")
    srp = SrpAuthorizer(ClientInfo("app", "app-secret"), idp.pool_id, "alice", PASSWORD, endpoint=idp.url)
    shown = " ".join(f(x) for x in (info, cc, token, srp) for f in (repr, str))
    for secret in (SECRET, KEY, "app-secret", "access-value", "refresh-value", "id-value", PASSWORD, cc.access_token):
        assert secret not in shown
    assert "app" in shown  # the client id is shown
    assert PASSWORD not in repr(vars(srp))


def test_errors_and_logs_carry_no_secret(idp, caplog):
    caplog.set_level(logging.DEBUG, logger="en_core.auth")
    with pytest.raises(AuthError) as raised:
        ClientCredentials(ClientInfo("app", SECRET, KEY), idp.token_url).access_token
    idp.ask("fail 1000 500")
    with pytest.raises(AuthError):
        ClientCredentials(ClientInfo("app", "app-secret", KEY), idp.token_url, scopes=["x"]).access_token
    text = str(raised.value) + repr(raised.value) + caplog.text
    for secret in (SECRET, KEY, "app-secret"):
        assert secret not in text
    assert any(r.name.startswith("en_core.auth") for r in caplog.records), "the core's log reaches logging"
