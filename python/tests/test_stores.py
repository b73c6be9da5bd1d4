"""Processes sharing one store make one token request: files and a real redis-server."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from en_core.auth import ClientInfo
from en_core.auth.oauth2 import ClientCredentials
from en_core.auth.store import FileStore, RedisStore

WORKER = textwrap.dedent(
    """
    import sys
    from en_core.auth import ClientInfo
    from en_core.auth.oauth2 import ClientCredentials
    from en_core.auth.store import FileStore, RedisStore
    kind, place, token_url = sys.argv[1:4]
    store = FileStore(place) if kind == "file" else RedisStore(place)
    sys.stdin.readline()  # start together
    auth = ClientCredentials(ClientInfo("app", "app-secret"), token_url, store=store)
    print(auth.access_token)
    """
)


def run_processes(n, kind, place, token_url):
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, kind, place, token_url],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    for w in workers:
        w.stdin.write("go\n")
        w.stdin.flush()
    tokens = [w.communicate(timeout=60)[0].strip() for w in workers]
    assert all(w.returncode == 0 for w in workers)
    return tokens


def test_processes_sharing_a_file_store_make_one_token_request(idp, tmp_path):
    tokens = run_processes(6, "file", str(tmp_path / "cache"), idp.token_url)
    assert len(set(tokens)) == 1 and tokens[0]
    assert idp.count("Token") == 1
    # A later run in this process finds it too.
    again = ClientCredentials(ClientInfo("app", "app-secret"), idp.token_url, store=FileStore(tmp_path / "cache"))
    assert again.access_token == tokens[0]
    assert idp.count("Token") == 1


def test_processes_sharing_redis_make_one_token_request(idp, redis_url):
    tokens = run_processes(6, "redis", redis_url, idp.token_url)
    assert len(set(tokens)) == 1 and tokens[0]
    assert idp.count("Token") == 1


def test_stores_are_keyed_by_credential_set(idp, tmp_path):
    store = FileStore(tmp_path)
    read = ClientCredentials(ClientInfo("app", "app-secret"), idp.token_url, scopes=["read"], store=store)
    write = ClientCredentials(ClientInfo("app", "app-secret"), idp.token_url, scopes=["write"], store=store)
    assert read.access_token != write.access_token
    assert idp.count("Token") == 2


def test_store_argument_is_checked():
    with pytest.raises(TypeError):
        ClientCredentials(ClientInfo("app", "s"), "https://idp.example.com/token", store="/tmp/cache")
    assert "hunter2" not in repr(RedisStore("redis://user:hunter2@127.0.0.1:6379"))


def test_a_store_that_cannot_forget_is_a_storage_error(idp, tmp_path):
    # Stores degrade to the identity provider while they are unusable (nothing is lost),
    # but a logout that cannot clear the stored token says so.
    from en_core.auth import StorageError

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    a = ClientCredentials(ClientInfo("app", "app-secret"), idp.token_url, store=FileStore(blocked / "cache"))
    assert a.access_token  # obtained although the cache cannot be written
    with pytest.raises(StorageError):
        a.revoke()
