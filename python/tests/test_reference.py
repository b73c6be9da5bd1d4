"""The reference's own contract (en_core.auth.base / en_core.auth.data), made true."""

from __future__ import annotations

import threading
import time

import pytest
import requests

import en_core.auth as auth
from en_core.auth import Authorizer, ClientInfo
from en_core.auth.base import Authorizer as BaseAuthorizer
from en_core.auth.data import ClientInfo as DataClientInfo


class Box:
    """A token object of the user's own, with a field of theirs."""

    def __init__(self, access_token: str, serial: int, expires_in: float | None = None) -> None:
        self.access_token = access_token
        self.serial = serial
        if expires_in is not None:
            self.expires_in = expires_in


class Recording(Authorizer):
    """Records the calls the core makes, in order."""

    def __init__(self, client_info: ClientInfo, prefix: str = "t", expires_in: float | None = None) -> None:
        super().__init__(client_info)
        self.prefix = prefix
        self.expires_in = expires_in
        self.calls: list[tuple[str, object]] = []
        self.serial = 0
        self.say_expired = False
        self.lock = threading.Lock()

    def authorize(self):
        with self.lock:
            self.serial += 1
            self.calls.append(("authorize", None))
            return Box(f"{self.prefix}{self.serial}", self.serial, self.expires_in)

    def expired(self, token):
        self.calls.append(("expired", token))
        return self.say_expired

    def refresh(self, token):
        with self.lock:
            self.serial += 1
            self.calls.append(("refresh", token))
            self.say_expired = False
            return Box(f"{self.prefix}{self.serial}", self.serial, self.expires_in)


def test_import_paths_are_the_references():
    assert BaseAuthorizer is Authorizer
    assert DataClientInfo is ClientInfo
    assert isinstance(auth.__version__, str) and auth.__version__


def test_client_info_has_the_three_attributes():
    info = ClientInfo("id", "secret", "key")
    assert (info.client_id, info.client_secret, info.api_key) == ("id", "secret", "key")
    assert ClientInfo("id", "secret").api_key == ""
    with pytest.raises(AttributeError):
        info.client_id = "other"


def test_the_base_class_cannot_be_instantiated():
    with pytest.raises(TypeError):
        Authorizer(ClientInfo("id", "secret"))

    class Incomplete(Authorizer):
        def authorize(self):
            return Box("t", 1)

    with pytest.raises(TypeError):
        Incomplete(ClientInfo("id", "secret"))


def test_calls_follow_the_reference_and_tokens_are_the_objects_returned():
    a = Recording(ClientInfo("me", "secret"))
    assert a.client_id == "me"
    assert a.access_token == "t1"
    assert a.access_token == "t1"
    first = a.calls[0]
    assert first == ("authorize", None)
    # expired() is asked before each use, with the very object authorize() returned.
    expired_calls = [token for name, token in a.calls if name == "expired"]
    assert expired_calls and all(isinstance(t, Box) and t.serial == 1 for t in expired_calls)
    a.say_expired = True
    assert a.access_token == "t2"
    refreshes = [token for name, token in a.calls if name == "refresh"]
    assert len(refreshes) == 1 and refreshes[0].serial == 1
    assert [name for name, _ in a.calls].count("authorize") == 1


def test_subclasses_may_take_more_parameters():
    class WithRegion(Recording):
        def __init__(self, client_info: ClientInfo, region: str) -> None:
            super().__init__(client_info, prefix=region + "-")

    assert WithRegion(ClientInfo("me", ""), "eu").access_token == "eu-1"


def test_refreshed_ahead_of_expiry_even_when_expired_only_says_false():
    # expired() never says True here: the core renews on the token's own expiry.
    a = Recording(ClientInfo("me", ""), expires_in=0.3)
    assert a.access_token == "t1"
    time.sleep(0.4)
    assert a.access_token == "t2"
    assert [name for name, _ in a.calls if name != "expired"] == ["authorize", "refresh"]


def test_call_sets_authorization_and_api_key(fake_factory):
    seen = []
    api = fake_factory(lambda m, p, h, b: (seen.append(h) or 200, {}, b"ok"))
    a = Recording(ClientInfo("me", "secret", "the-key"))
    response = requests.get(api.url + "/orders", auth=a, timeout=10)
    assert response.status_code == 200
    assert seen[0]["authorization"] == "Bearer t1"
    assert seen[0]["x-api-key"] == "the-key"
    no_key = Recording(ClientInfo("me", "secret"))
    requests.get(api.url + "/orders", auth=no_key, timeout=10)
    assert "x-api-key" not in seen[1]


def test_call_returns_the_request():
    a = Recording(ClientInfo("me", ""))
    prepared = requests.Request("GET", "http://127.0.0.1:9/x").prepare()
    assert a(prepared) is prepared
    assert prepared.headers["Authorization"] == "Bearer t1"
