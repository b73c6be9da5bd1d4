"""requests integration: one renewal and one resend after a 401, bodies replayed,
credentials kept with their origin."""

from __future__ import annotations

import io
import threading

import requests

from en_core.auth import Authorizer, ClientInfo
from en_core.auth.oauth2 import ClientCredentials

from test_lifecycle import in_threads


class Counting(Authorizer):
    def __init__(self, client_info):
        super().__init__(client_info)
        self.calls = 0
        self.lock = threading.Lock()

    def authorize(self):
        with self.lock:
            self.calls += 1
            n = self.calls

        class T:
            access_token = f"t{n}"
            expires_in = 3600

        return T()

    def expired(self, token):
        return False

    def refresh(self, token):
        return self.authorize()


def test_a_401_costs_one_renewal_and_one_resend(idp):
    a = ClientCredentials(ClientInfo("app", "app-secret"), idp.token_url)
    assert requests.get(idp.protected_url, auth=a, timeout=10).status_code == 200
    idp.ask("expire")
    response = requests.get(idp.protected_url, auth=a, timeout=10)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert idp.count("Token") == 2
    assert idp.count("Protected") == 3


def test_many_threads_seeing_a_401_renew_once(idp):
    a = ClientCredentials(ClientInfo("app", "app-secret"), idp.token_url)
    requests.get(idp.protected_url, auth=a, timeout=10)
    idp.ask("expire")
    statuses = in_threads(16, lambda: requests.get(idp.protected_url, auth=a, timeout=10).status_code)
    assert statuses == [200] * 16
    assert idp.count("Token") == 2


def test_a_second_401_goes_to_the_caller(fake_factory):
    api = fake_factory(lambda m, p, h, b: (401, {"WWW-Authenticate": "Bearer"}, b"no"))
    a = Counting(ClientInfo("me", ""))
    response = requests.get(api.url, auth=a, timeout=10)
    assert response.status_code == 401
    assert a.calls == 2  # the first token and one renewal
    assert [r["headers"]["authorization"] for r in api.recorded.requests] == ["Bearer t1", "Bearer t2"]


def test_a_401_to_an_older_token_resends_without_renewing(fake_factory):
    a = Counting(ClientInfo("me", ""))
    old = a._core.header_value()
    assert a._core.rejected(old) == "Bearer t2"
    assert a._core.rejected(old) == "Bearer t2"
    assert a.calls == 2


def test_the_resend_carries_the_body(fake_factory):
    def handler(method, path, headers, body):
        if headers["authorization"] == "Bearer t1":
            return 401, {}, b""
        return 200, {}, body

    api = fake_factory(handler)
    a = Counting(ClientInfo("me", ""))
    assert requests.post(api.url, data=b"payload", auth=a, timeout=10).content == b"payload"
    file_body = requests.post(api.url, data=io.BytesIO(b"from a file"), auth=Counting(ClientInfo("me", "")), timeout=10)
    assert file_body.status_code == 200 and file_body.content == b"from a file"
    bodies = [r["body"] for r in api.recorded.requests]
    assert bodies == [b"payload", b"payload", b"from a file", b"from a file"]


def test_a_stream_that_cannot_be_replayed_gets_the_401(fake_factory):
    api = fake_factory(lambda m, p, h, b: (401, {}, b""))
    a = Counting(ClientInfo("me", ""))

    def chunks():
        yield b"once"

    assert requests.post(api.url, data=chunks(), auth=a, timeout=10).status_code == 401
    assert a.calls == 1


def test_credentials_stay_with_their_origin_on_redirects(fake_factory):
    other = fake_factory(lambda m, p, h, b: (200, {}, b"elsewhere"))
    home = fake_factory(
        lambda m, p, h, b: (302, {"Location": other.url + "/landing"}, b"")
        if p == "/away"
        else (302, {"Location": "/here"}, b"") if p == "/hop" else (200, {}, b"home")
    )
    a = Counting(ClientInfo("me", "", "the-key"))
    assert requests.get(home.url + "/away", auth=a, timeout=10).content == b"elsewhere"
    first = home.recorded.paths("/away")[0]["headers"]
    assert first["authorization"] == "Bearer t1" and first["x-api-key"] == "the-key"
    landed = other.recorded.paths("/landing")[0]["headers"]
    assert "authorization" not in landed and "x-api-key" not in landed
    # The same origin keeps both.
    assert requests.get(home.url + "/hop", auth=a, timeout=10).content == b"home"
    here = home.recorded.paths("/here")[0]["headers"]
    assert here["authorization"] == "Bearer t1" and here["x-api-key"] == "the-key"
