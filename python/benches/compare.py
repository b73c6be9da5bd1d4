#!/usr/bin/env python3
"""The Python package beside the Python libraries its users have today, in one run.

1. SRP login client CPU (time.process_time(): every thread of this process, the local
   identity provider runs in another): en_core.auth.srp.SrpAuthorizer vs pycognito's
   AWSSRP.authenticate_user over boto3, against the same local identity provider.
2. The hot path: ``auth(prepared_request)`` with a valid token, for
   en_core.auth.oauth2.ClientCredentials, requests-auth's OAuth2ClientCredentials and a
   static-header requests.auth.AuthBase (the floor: setting one header).
3. Token requests when 32 threads start cold: en_core.auth, requests-auth, and authlib's
   OAuth2Session used the documented way (fetch_token() when the session has no token).

Rounds are interleaved (A, B, A, B …) and figures are medians of per-round values, because
the machine is shared: compare the ratios, not the absolute numbers.

    python benches/compare.py IDP_DRIVER [rounds]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
import timeit
from importlib.metadata import version

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "local-dummy")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local-dummy")
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

import boto3  # noqa: E402
import botocore.config  # noqa: E402
import requests  # noqa: E402
import requests_auth  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from pycognito.aws_srp import AWSSRP  # noqa: E402

from en_core.auth import ClientInfo  # noqa: E402
from en_core.auth.oauth2 import ClientCredentials  # noqa: E402
from en_core.auth.srp import SrpAuthorizer  # noqa: E402


class Idp:
    def __init__(self, driver: str) -> None:
        self.process = subprocess.Popen(
            [driver, "--client", "app:app-secret", "--client", "public-app", "--user", "alice:Passw0rd!"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        _, self.url, self.pool_id = self.process.stdout.readline().split()
        self.token_url = self.url + "/oauth2/token"

    def count(self, operation: str) -> int:
        self.process.stdin.write(f"count {operation}\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())


def srp_rounds(idp: Idp, rounds: int, logins: int) -> None:
    cognito = boto3.client(
        "cognito-idp", region_name="us-east-1", endpoint_url=idp.url,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )

    def ours() -> None:
        a = SrpAuthorizer(ClientInfo("public-app", ""), idp.pool_id, "alice", "Passw0rd!", endpoint=idp.url)
        assert a.access_token

    def theirs() -> None:
        srp = AWSSRP(username="alice", password="Passw0rd!", pool_id=idp.pool_id, client_id="public-app",
                     client=cognito)
        assert srp.authenticate_user()["AuthenticationResult"]["AccessToken"]

    ours(), theirs()  # warm-up: imports, connection pools, JWKS
    ratios, mine, pyc = [], [], []
    for _ in range(rounds):
        per_login = []
        for login in (ours, theirs):
            start = time.process_time()
            for _ in range(logins):
                login()
            per_login.append((time.process_time() - start) * 1000 / logins)
        mine.append(per_login[0])
        pyc.append(per_login[1])
        ratios.append(per_login[1] / per_login[0])
    print(f"SRP login client CPU, {rounds} rounds of {logins} logins each:")
    print(f"  en_core.auth {version('en-core-auth')}: median {statistics.median(mine):.2f} ms")
    print(f"  pycognito {version('pycognito')} (boto3 {version('boto3')}): median {statistics.median(pyc):.2f} ms")
    print(f"  pycognito / en_core.auth: median of per-round ratios {statistics.median(ratios):.1f}x "
          f"(min {min(ratios):.1f}, max {max(ratios):.1f})")


class Static(requests.auth.AuthBase):
    def __call__(self, request):
        request.headers["Authorization"] = "Bearer static"
        return request


def hot_path_rounds(idp: Idp, rounds: int, calls: int) -> None:
    ours = ClientCredentials(ClientInfo("app", "app-secret"), idp.token_url)
    theirs = requests_auth.OAuth2ClientCredentials(idp.token_url, client_id="app", client_secret="app-secret")
    floor = Static()
    prepared = requests.Request("GET", idp.url + "/protected").prepare()
    for auth in (ours, theirs, floor):
        auth(prepared.copy())  # the first token, outside the timing
    results = {"en_core.auth": [], "requests-auth": [], "static AuthBase": []}
    for _ in range(rounds):
        for name, auth in zip(results, (ours, theirs, floor)):
            request = prepared.copy()
            seconds = timeit.timeit(lambda: auth(request), number=calls)
            results[name].append(seconds / calls * 1e6)
    ratio = statistics.median(t / o for t, o in zip(results["requests-auth"], results["en_core.auth"]))
    print(f"Hot path, auth(prepared_request) with a valid token, {rounds} rounds of {calls} calls:")
    for name, values in results.items():
        print(f"  {name}: median {statistics.median(values):.2f} us")
    print(f"  requests-auth / en_core.auth: median of per-round ratios {ratio:.1f}x")


def cold_threads(idp: Idp, threads: int = 32) -> None:
    url = idp.url + "/protected"

    def run(make_call) -> int:
        before = idp.count("Token")
        barrier = threading.Barrier(threads)

        def one() -> None:
            barrier.wait()
            make_call()

        workers = [threading.Thread(target=one) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return idp.count("Token") - before

    ours = ClientCredentials(ClientInfo("app", "app-secret"), idp.token_url, scopes=["cold"])
    mine = run(lambda: requests.get(url, auth=ours, timeout=30))
    ra = requests_auth.OAuth2ClientCredentials(idp.token_url, client_id="app", client_secret="app-secret",
                                               scope="cold-ra")
    requests_auth.OAuth2.token_cache.clear()
    theirs = run(lambda: requests.get(url, auth=ra, timeout=30))
    session = OAuth2Session("app", "app-secret", token_endpoint=idp.token_url, grant_type="client_credentials")

    def authlib_call() -> None:
        if not session.token:
            session.fetch_token()
        session.get(url, timeout=30)

    authlib = run(authlib_call)
    print(f"Token requests when {threads} threads start cold:")
    print(f"  en_core.auth: {mine}; requests-auth {version('requests-auth')}: {theirs}; "
          f"authlib {version('authlib')}: {authlib}")


def main() -> None:
    driver = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    idp = Idp(driver)
    print(f"Python {sys.version.split()[0]}, requests {version('requests')}")
    srp_rounds(idp, rounds, logins=10)
    hot_path_rounds(idp, rounds, calls=20000)
    cold_threads(idp)


if __name__ == "__main__":
    main()
