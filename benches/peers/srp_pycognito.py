#!/usr/bin/env python3
"""CPU time of one Cognito SRP login in pycognito, to compare with benches/srp_login.rs.

A login is what the client computes between InitiateAuth and RespondToAuthChallenge: a fresh
secret and SRP_A (AWSSRP's constructor and get_auth_params), then process_challenge on the
challenge of case 0 in tests/vectors/srp_pycognito.json. No network: the boto3 client is a
stand-in that is never called, and building it is not timed.

Prints one line: `pycognito <version> login: <median> ms CPU (runs of <n> logins: ...)`.
Usage: python benches/peers/srp_pycognito.py [logins per run] [runs]
"""

import json
import os
import statistics
import sys
import time
from importlib.metadata import version

from pycognito.aws_srp import AWSSRP


class NoClient:
    """Stands in for the boto3 client: nothing here calls it."""


def main():
    per_run = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "tests", "vectors", "srp_pycognito.json")) as f:
        case = json.load(f)["cases"][0]
    challenge = {
        "USERNAME": case["username"],
        "USER_ID_FOR_SRP": case["user_id_for_srp"],
        "SALT": case["salt"],
        "SRP_B": case["B"],
        "SECRET_BLOCK": case["secret_block"],
    }
    client = NoClient()

    def login():
        srp = AWSSRP(
            username=case["username"],
            password=case["password"],
            pool_id=case["pool_id"],
            client_id=case["client_id"],
            client=client,
        )
        params = srp.get_auth_params()
        return srp.process_challenge(challenge, params)

    login()  # warm-up
    per_login_ms = []
    for _ in range(runs):
        start = time.process_time()
        for _ in range(per_run):
            login()
        per_login_ms.append((time.process_time() - start) * 1000 / per_run)
    median = statistics.median(per_login_ms)
    shown = ", ".join(f"{t:.2f}" for t in per_login_ms)
    print(
        f"pycognito {version('pycognito')} login: {median:.3f} ms CPU "
        f"(median of {runs} runs of {per_run} logins: {shown})"
    )


if __name__ == "__main__":
    main()
