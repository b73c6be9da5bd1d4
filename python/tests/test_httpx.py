"""The httpx adapter: headers, one renewal and one resend, credentials kept home."""

from __future__ import annotations

import httpx

from en_core.auth import ClientInfo
from en_core.auth.httpx import HttpxAuth
from en_core.auth.oauth2 import ClientCredentials

from test_requests import Counting


def test_httpx_401_costs_one_renewal_and_one_resend(idp):
    a = ClientCredentials(ClientInfo("app", "app-secret"), idp.token_url)
    with HttpxAuth(a).install(httpx.Client(timeout=10)) as client:
        assert client.get(idp.protected_url).status_code == 200
        idp.ask("expire")
        assert client.get(idp.protected_url).status_code == 200
    assert idp.count("Token") == 2
    assert idp.count("Protected") == 3  # 200, then 401 and the resend


def test_httpx_keeps_the_api_key_home(fake_factory):
    other = fake_factory(lambda m, p, h, b: (200, {}, b"elsewhere"))
    home = fake_factory(lambda m, p, h, b: (302, {"Location": other.url + "/landing"}, b""))
    a = Counting(ClientInfo("me", "", "the-key"))
    with HttpxAuth(a).install(httpx.Client(timeout=10, follow_redirects=True)) as client:
        assert client.get(home.url + "/away").text == "elsewhere"
    first = home.recorded.requests[0]["headers"]
    assert first["authorization"] == "Bearer t1" and first["x-api-key"] == "the-key"
    landed = other.recorded.requests[0]["headers"]
    assert "authorization" not in landed and "x-api-key" not in landed
