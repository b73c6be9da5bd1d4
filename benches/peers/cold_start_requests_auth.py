#!/usr/bin/env python3
"""32 threads on a cold start with requests-auth's OAuth2 client credentials, to set beside
benches/cold_start.rs (issue 7), which runs this script against the same local identity
provider in the same run and counts the token requests that reach it.

One repetition: a fresh OAuth2ClientCredentials over an emptied token cache, 32 threads
released together by a barrier, each doing one requests.get of the protected URL with it.
requests-auth caches tokens process-wide (OAuth2.token_cache, keyed by a hash of the token
URL and its parameters), so a second repetition would find the first one's token unless the
cache is cleared: it is, before every repetition, which is what makes each one a cold start.

Prints `version requests-auth <v> (requests <v>, Python <v>)`, then after each repetition
`rep <i> ok=<200s> other=<other statuses or errors> wall_ms=<ms> token_responses=<n>`, where
token_responses counts the answers the token endpoint sent back to requests-auth's session,
a client-side figure the bench checks against the identity provider's own count. With
`--step`, waits for a line on standard input after each repetition, so that the caller can
read the identity provider's counter between repetitions.

Usage: python cold_start_requests_auth.py <token_url> <protected_url> <repetitions> [--step]
"""

import platform
import sys
import threading
import time
from importlib.metadata import version

import requests
import requests_auth
from requests_auth import OAuth2ClientCredentials

THREADS = 32
CLIENT_ID = "bench"
CLIENT_SECRET = "bench-secret"
TIMEOUT_S = 30


def repetition(token_url, protected_url):
    requests_auth.OAuth2.token_cache.clear()
    auth = OAuth2ClientCredentials(token_url, CLIENT_ID, CLIENT_SECRET, timeout=TIMEOUT_S)
    token_responses = []
    # requests-auth fetches every token through auth.session; a response hook there sees
    # each answer from the token endpoint without changing what the library does.
    auth.session.hooks["response"].append(lambda r, *args, **kwargs: token_responses.append(1))

    start = threading.Barrier(THREADS + 1)
    statuses = [None] * THREADS

    def worker(i):
        start.wait()
        try:
            statuses[i] = requests.get(protected_url, auth=auth, timeout=TIMEOUT_S).status_code
        except Exception as error:  # counted as a failure, not hidden
            statuses[i] = f"{type(error).__name__}"

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall_ms = (time.perf_counter() - began) * 1000
    ok = sum(1 for s in statuses if s == 200)
    return ok, THREADS - ok, wall_ms, len(token_responses)


def main():
    if len(sys.argv) not in (4, 5) or (len(sys.argv) == 5 and sys.argv[4] != "--step"):
        sys.exit(__doc__)
    token_url, protected_url, repetitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    step = len(sys.argv) == 5
    print(
        f"version requests-auth {version('requests-auth')} (requests {requests.__version__},"
        f" Python {platform.python_version()})",
        flush=True,
    )
    for i in range(1, repetitions + 1):
        ok, other, wall_ms, token_responses = repetition(token_url, protected_url)
        print(
            f"rep {i} ok={ok} other={other} wall_ms={wall_ms:.3f} token_responses={token_responses}",
            flush=True,
        )
        if step:
            sys.stdin.readline()


if __name__ == "__main__":
    main()
