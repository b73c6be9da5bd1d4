"""Logs in to a LocalIdp with pycognito's SRP client (AWSSRP) over boto3, optionally refreshes.

With --cognito-class it uses pycognito's high-level Cognito class instead, which also verifies
every token against the pool's JWKS (fetched from <endpoint>/<pool id>/.well-known/jwks.json)
and issuer, and refreshes with its own renew_access_token().

Device tracking (pycognito's own device math and DEVICE_SRP_AUTH flow):
  --register-device   after the login, registers the NewDeviceMetadata device with a verifier
                      from pycognito's generate_hash_device (ConfirmDevice and, when the pool
                      asks, UpdateDeviceStatus, through boto3: pycognito's own confirm_device
                      posts to the real AWS URL) and prints "device": {key, group_key, password}
  --device-key K --device-group-key G --device-password P
                      logs in as that device (DEVICE_KEY, then DEVICE_SRP_AUTH answered by
                      pycognito) and refreshes with the DEVICE_KEY

Run by tests/local_idp_pycognito.rs. Prints one JSON line:
  {"ok": true, "access_token": ..., "id_token": ..., "refresh_token": ..., "refreshed_access_token": ...}
  {"ok": false, "error": "<Cognito exception name>", "message": ...}
Only the given endpoint is contacted: the credentials are dummies and EC2 metadata is off.
"""

import argparse
import base64
import json
import os
import sys

# Before boto3 is imported: never look for real credentials or instance metadata.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "local-dummy")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local-dummy")
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

import boto3  # noqa: E402
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402
from pycognito import Cognito  # noqa: E402
from pycognito.aws_srp import AWSSRP, generate_hash_device  # noqa: E402


def claims(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def failure(error):
    return {
        "ok": False,
        "error": error.response["Error"]["Code"],
        "message": error.response["Error"].get("Message", ""),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--pool-id", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--refresh", action="store_true")
    parser.add_argument("--cognito-class", action="store_true")
    parser.add_argument("--register-device", action="store_true")
    parser.add_argument("--device-key")
    parser.add_argument("--device-group-key")
    parser.add_argument("--device-password")
    args = parser.parse_args()
    config = botocore.config.Config(
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
    )
    if args.cognito_class:
        return with_cognito_class(args, config)

    client = boto3.client(
        "cognito-idp",
        region_name=args.pool_id.split("_")[0],
        endpoint_url=args.endpoint,
        aws_access_key_id="local-dummy",
        aws_secret_access_key="local-dummy",
        config=config,
    )
    srp = AWSSRP(
        username=args.username,
        password=args.password,
        pool_id=args.pool_id,
        client_id=args.client_id,
        client=client,
        client_secret=args.client_secret,
        device_key=args.device_key,
        device_group_key=args.device_group_key,
        device_password=args.device_password,
    )
    try:
        answer = srp.authenticate_user()
        result = answer["AuthenticationResult"]
        out = {
            "ok": True,
            "access_token": result["AccessToken"],
            "id_token": result["IdToken"],
            "refresh_token": result["RefreshToken"],
            "new_device": "NewDeviceMetadata" in result,
        }
        if args.register_device:
            out["device"] = register_device(client, result)
        if args.refresh:
            params = {"REFRESH_TOKEN": result["RefreshToken"]}
            device_key = claims(result["AccessToken"]).get("device_key")
            if device_key is not None:
                params["DEVICE_KEY"] = device_key
            if args.client_secret is not None:
                # The hash is over the real user name, which may differ from the alias typed.
                username = claims(result["AccessToken"])["username"]
                params["SECRET_HASH"] = AWSSRP.get_secret_hash(
                    username, args.client_id, args.client_secret
                )
            renewed = client.initiate_auth(
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters=params,
                ClientId=args.client_id,
            )["AuthenticationResult"]
            out["refreshed_access_token"] = renewed["AccessToken"]
            out["refresh_returned_refresh_token"] = "RefreshToken" in renewed
    except botocore.exceptions.ClientError as error:
        out = failure(error)
    print(json.dumps(out), flush=True)
    return 0


def register_device(client, result):
    metadata = result["NewDeviceMetadata"]
    key, group_key = metadata["DeviceKey"], metadata["DeviceGroupKey"]
    password, verifier_config = generate_hash_device(group_key, key)
    confirmed = client.confirm_device(
        AccessToken=result["AccessToken"],
        DeviceKey=key,
        DeviceSecretVerifierConfig=verifier_config,
        DeviceName="pycognito peer",
    )
    if confirmed.get("UserConfirmationNecessary"):
        client.update_device_status(
            AccessToken=result["AccessToken"],
            DeviceKey=key,
            DeviceRememberedStatus="remembered",
        )
    return {"key": key, "group_key": group_key, "password": password}


def with_cognito_class(args, config):
    user = Cognito(
        args.pool_id,
        args.client_id,
        client_secret=args.client_secret,
        username=args.username,
        botocore_config=config,
        boto3_client_kwargs={
            "endpoint_url": args.endpoint,
            "aws_access_key_id": "local-dummy",
            "aws_secret_access_key": "local-dummy",
        },
    )
    try:
        user.authenticate(password=args.password)  # verifies both tokens
        out = {
            "ok": True,
            "access_token": user.access_token,
            "id_token": user.id_token,
            "refresh_token": user.refresh_token,
        }
        if args.refresh:
            user.renew_access_token()  # verifies the new tokens too
            out["refreshed_access_token"] = user.access_token
            out["refresh_returned_refresh_token"] = user.refresh_token != out["refresh_token"]
    except botocore.exceptions.ClientError as error:
        out = failure(error)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
