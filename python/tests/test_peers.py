"""Against servers nobody here wrote (oidc-provider, OpenID Certified) and the crate's
local identity provider (Cognito SRP, checked against pycognito; browser and device logins)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import signal
import struct
import threading
import time

import pytest
import requests

from en_core.auth import ChallengeRequiredError, ClientInfo, CredentialsRejectedError
from en_core.auth.oauth2 import AuthorizationCode, ClientCredentials, DeviceCode, DevicePrompt, RefreshToken
from en_core.auth.srp import Challenge, SrpAuthorizer


def test_client_credentials_at_oidc_provider(oidc):
    info = ClientInfo("basic-client", "basic:se+cret%1")
    a = ClientCredentials(info, oidc["url"] + "/token", scopes=["read"])
    token = a.access_token
    assert token and a.access_token == token
    discovered = ClientCredentials.discover(info, oidc["url"], scopes=["write"])
    assert discovered.access_token


def test_refresh_token_at_oidc_provider(oidc):
    info = ClientInfo("refresh-client", "refresh:se+cret%3")
    a = RefreshToken(info, oidc["url"] + "/token", oidc["refresh_token"])
    first = a.access_token
    a.invalidate()
    assert a.access_token != first  # renewed with the (possibly rotated) refresh token


def test_a_wrong_secret_is_rejected_by_oidc_provider(oidc):
    with pytest.raises(CredentialsRejectedError):
        ClientCredentials(ClientInfo("basic-client", "wrong"), oidc["url"] + "/token").access_token


def totp(secret: bytes, at: float | None = None) -> str:
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


@pytest.mark.parametrize("client", [("public-app", ""), ("app", "app-secret")], ids=["no secret", "secret"])
def test_srp_login_against_the_local_identity_provider(idp, client):
    a = SrpAuthorizer(ClientInfo(*client), idp.pool_id, "alice", "Passw0rd!", endpoint=idp.url)
    assert requests.get(idp.protected_url, auth=a, timeout=10).status_code == 200
    assert idp.count("InitiateAuth") == 1
    ided = SrpAuthorizer(ClientInfo(*client), idp.pool_id, "alice", "Passw0rd!", endpoint=idp.url, use_id_token=True)
    assert ided.access_token  # the access token property stays the access token
    assert ided._core.header_value().count(".") == 2  # a JWT: the ID token goes in the header


def test_srp_with_an_mfa_challenge(idp_factory):
    secret = b"12345678901234567890"
    idp = idp_factory("--client", "public-app", "--totp-user", "bob:Passw0rd!:" + secret.decode())
    asked: list[Challenge] = []

    def answer(challenge: Challenge) -> str:
        asked.append(challenge)
        return totp(secret)

    a = SrpAuthorizer(ClientInfo("public-app", ""), idp.pool_id, "bob", "Passw0rd!", endpoint=idp.url,
                      challenge_handler=answer)
    assert requests.get(idp.protected_url, auth=a, timeout=10).status_code == 200
    assert [c.name for c in asked] == ["SOFTWARE_TOKEN_MFA"]
    without = SrpAuthorizer(ClientInfo("public-app", ""), idp.pool_id, "bob", "Passw0rd!", endpoint=idp.url)
    with pytest.raises(ChallengeRequiredError):
        without.access_token


def test_srp_wrong_password(idp):
    a = SrpAuthorizer(ClientInfo("public-app", ""), idp.pool_id, "alice", "wrong", endpoint=idp.url)
    with pytest.raises(CredentialsRejectedError):
        a.access_token


def test_browser_login_with_the_local_identity_provider(idp):
    idp.ask("login alice")
    opened: list[str] = []

    def browser(url: str) -> None:
        opened.append(url)
        # The person's browser: the page logs alice in and redirects to the loopback listener.
        threading.Thread(target=requests.get, args=(url,), kwargs={"timeout": 10}, daemon=True).start()

    a = AuthorizationCode(ClientInfo("public-app", ""), idp.url + "/oauth2/authorize", idp.token_url,
                          scopes=["openid"], browser=browser)
    assert requests.get(idp.protected_url, auth=a, timeout=10).status_code == 200
    assert len(opened) == 1 and "code_challenge=" in opened[0]


def test_device_login_with_the_local_identity_provider(idp):
    shown: list[DevicePrompt] = []

    def prompt(p: DevicePrompt) -> None:
        shown.append(p)
        threading.Timer(0.2, idp.ask, args=(f"approve {p.user_code} alice",)).start()

    a = DeviceCode(ClientInfo("public-app", ""), idp.url + "/oauth2/device_authorization", idp.token_url,
                   prompt=prompt)
    assert a.access_token
    assert len(shown) == 1 and shown[0].verification_uri.startswith("http")


def test_ctrl_c_ends_a_device_login_wait(idp):
    def prompt(p: DevicePrompt) -> None:
        # Nobody approves; the person presses Ctrl-C.
        threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGINT)).start()

    a = DeviceCode(ClientInfo("public-app", ""), idp.url + "/oauth2/device_authorization", idp.token_url,
                   prompt=prompt)
    with pytest.raises(KeyboardInterrupt):
        a.access_token
