"""The Rust lifecycle under Python threads: single flight, back-off, typed failures.
Counts, never timings."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from en_core.auth import (
    AuthError,
    Authorizer,
    ClientInfo,
    ConfigurationError,
    CredentialsRejectedError,
    MalformedResponseError,
    ServerError,
    TransportError,
)
from en_core.auth.oauth2 import ClientCredentials

from conftest import free_port


class Token:
    def __init__(self, access_token):
        self.access_token = access_token
        self.expires_in = 3600


class Slow(Authorizer):
    """Takes a while to answer, so that every thread arrives while it works."""

    def __init__(self, client_info, answer=lambda n: Token(f"t{n}")):
        super().__init__(client_info)
        self.calls = 0
        self.answer = answer
        self.lock = threading.Lock()

    def authorize(self):
        with self.lock:
            self.calls += 1
            n = self.calls
        time.sleep(0.2)
        return self.answer(n)

    def expired(self, token):
        return False

    def refresh(self, token):
        return self.authorize()


def in_threads(n, call):
    barrier = threading.Barrier(n)

    def one(_):
        barrier.wait()
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - the test inspects it
            return error

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_32_cold_threads_make_one_call_to_a_python_subclass():
    a = Slow(ClientInfo("me", ""))
    results = in_threads(32, lambda: a.access_token)
    assert results == ["t1"] * 32
    assert a.calls == 1


def test_32_cold_threads_make_one_token_request(idp):
    a = ClientCredentials(ClientInfo("app", "app-secret"), idp.token_url)
    results = in_threads(32, lambda: a.access_token)
    assert len(set(results)) == 1 and isinstance(results[0], str)
    assert idp.count("Token") == 1


def test_a_failing_token_endpoint_costs_one_renewals_attempts(idp):
    idp.ask("fail 1000 500")
    alone = ClientCredentials(ClientInfo("app", "app-secret"), idp.token_url)
    with pytest.raises(ServerError):
        alone.access_token
    one_renewal = idp.count("Token")
    assert one_renewal >= 1
    crowd = ClientCredentials(ClientInfo("app", "app-secret"), idp.token_url, scopes=["other"])
    results = in_threads(32, lambda: crowd.access_token)
    assert all(isinstance(r, ServerError) for r in results), results
    assert idp.count("Token") == 2 * one_renewal
    # Remembered for the back-off: calls right after send nothing.
    for _ in range(5):
        with pytest.raises(ServerError):
            crowd.access_token
    assert idp.count("Token") == 2 * one_renewal


def test_an_exception_in_a_subclass_reaches_the_caller_and_backs_off():
    class Broken(Authorizer):
        calls = 0

        def authorize(self):
            Broken.calls += 1
            raise ValueError("the license server is down")

        def expired(self, token):
            return False

        def refresh(self, token):
            return self.authorize()

    a = Broken(ClientInfo("me", ""))
    with pytest.raises(ValueError, match="license server"):
        a.access_token
    # The failure is remembered for a back-off: no second call right away.
    with pytest.raises(AuthError):
        a.access_token
    assert Broken.calls == 1


@pytest.mark.parametrize(
    "returned",
    [None, object(), Token("line\nbreak"), Token(""), Token(42)],
    ids=["None", "no access_token", "line break", "empty", "not a str"],
)
def test_bad_tokens_are_typed_errors_and_nothing_is_sent(returned, fake_factory):
    import requests

    api = fake_factory(lambda m, p, h, b: (200, {}, b"ok"))

    class Bad(Authorizer):
        def authorize(self):
            return returned

        def expired(self, token):
            return False

        def refresh(self, token):
            return self.authorize()

    with pytest.raises(MalformedResponseError):
        requests.get(api.url, auth=Bad(ClientInfo("me", "")), timeout=10)
    assert api.recorded.requests == []


def test_an_exception_in_expired_reaches_the_caller():
    class Picky(Slow):
        def expired(self, token):
            raise RuntimeError("cannot tell")

    a = Picky(ClientInfo("me", ""))
    assert a.access_token == "t1"
    with pytest.raises(RuntimeError, match="cannot tell"):
        a.access_token


def test_each_exception_class_from_a_real_failure(idp):
    with pytest.raises(ConfigurationError):
        ClientCredentials(ClientInfo("app", "s"), "http://idp.example.com/token")
    with pytest.raises(TransportError):
        ClientCredentials(ClientInfo("app", "s"), f"http://127.0.0.1:{free_port()}/token").access_token
    with pytest.raises(CredentialsRejectedError):
        ClientCredentials(ClientInfo("app", "wrong"), idp.token_url).access_token
    for cls in (ConfigurationError, TransportError, ServerError, CredentialsRejectedError, MalformedResponseError):
        assert issubclass(cls, AuthError) and cls.kind != "Other"
