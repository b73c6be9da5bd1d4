"""Servers for the tests, all on loopback and started here: the local identity provider
(the crate's, through examples/idp_driver.rs), oidc-provider (npm, OpenID Certified),
redis-server (Debian), and small in-process HTTP servers for fault injection."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_PEERS = os.environ.get("EN_CORE_AUTH_REQUIRE_PEERS") == "1"


def missing_peer(what: str) -> None:
    """Skips, or fails when the peers are required (CI)."""
    if REQUIRE_PEERS:
        pytest.fail(f"{what} is missing and EN_CORE_AUTH_REQUIRE_PEERS=1")
    pytest.skip(f"{what} is missing")


class Idp:
    """The crate's local identity provider in a child process."""

    def __init__(self, *args: str) -> None:
        driver = os.environ.get("EN_CORE_AUTH_IDP_DRIVER") or str(ROOT / "target/debug/examples/idp_driver")
        if not Path(driver).exists():
            missing_peer(f"the identity provider driver ({driver}; cargo build -p en-core-auth-python --example idp_driver)")
        self.process = subprocess.Popen(
            [driver, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        first = self.process.stdout.readline().split()
        assert first[:1] == ["ready"], first
        self.url, self.pool_id = first[1], first[2]
        self.lock = threading.Lock()

    @property
    def token_url(self) -> str:
        return self.url + "/oauth2/token"

    @property
    def protected_url(self) -> str:
        return self.url + "/protected"

    def ask(self, command: str) -> str:
        with self.lock:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
            answer = self.process.stdout.readline().strip()
        assert not answer.startswith("error"), answer
        return answer

    def count(self, operation: str) -> int:
        return int(self.ask(f"count {operation}"))

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture
def idp_factory():
    started: list[Idp] = []

    def start(*args: str) -> Idp:
        idp = Idp(*args)
        started.append(idp)
        return idp

    yield start
    for idp in started:
        idp.close()


@pytest.fixture
def idp(idp_factory) -> Idp:
    return idp_factory("--client", "app:app-secret", "--client", "public-app", "--user", "alice:Passw0rd!")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url():
    server = shutil.which("redis-server")
    if server is None:
        missing_peer("redis-server")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}"
    process.kill()
    process.wait()


@pytest.fixture(scope="session")
def oidc():
    node = os.environ.get("EN_CORE_AUTH_NODE") or shutil.which("node")
    folder = ROOT / "tests/peers/oidc"
    if node is None or not (folder / "node_modules/oidc-provider").exists():
        missing_peer("oidc-provider (cd tests/peers/oidc && npm ci)")
    process = subprocess.Popen([node, "server.mjs", "0"], cwd=folder, stdout=subprocess.PIPE, text=True)
    lines = {}
    for _ in range(3):
        key, _, value = process.stdout.readline().strip().partition(" ")
        lines[key] = value
    url = lines["listening"].removeprefix("on ")
    yield {"url": url, "refresh_token": lines["refresh_token"]}
    process.kill()
    process.wait()


class Recorded:
    """What an in-process server saw."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)

    def paths(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"].split("?")[0] == path]


class Fake:
    """An in-process HTTP server on loopback whose answers the test writes:
    ``handler(method, path, headers, body) -> (status, headers, body)``."""

    def __init__(self, handler: Callable[..., tuple[int, dict[str, str], bytes]]) -> None:
        self.recorded = Recorded()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.recorded.add({"method": self.command, "path": self.path, "headers": headers, "body": body})
                status, extra, answer = handler(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_factory():
    started: list[Fake] = []

    def start(handler: Callable[..., tuple[int, dict[str, str], bytes]]) -> Fake:
        fake = Fake(handler)
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.close()


def token_json(access_token: str, expires_in: int = 3600) -> bytes:
    return json.dumps({"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in}).encode()
