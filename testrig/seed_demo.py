"""Seed a running test server with amishare's demo world and print its ids as one JSON object.

Usage: .venv/bin/python testrig/seed_demo.py --endpoint http://127.0.0.1:PORT
       [--aws-managed] [--reset]

In account 111111111111 (reached through STS AssumeRole of arn:aws:iam::111111111111:role/amishare)
and region us-east-1 it creates a customer managed KMS key with alias alias/amishare-demo, an
encrypted volume under that key, a snapshot of it and the image amishare-demo registered from the
snapshot. With --aws-managed it also creates the image amishare-demo-aws-managed from a volume
under the account's aws/ebs key. Names are fixed, so seed a fresh server, or pass --reset to
clear the server's state first.

stdout: {"image_id", "snapshot_id", "key_id", "key_arn", "source_account", "target_account",
"region"} and, with --aws-managed, "aws_managed_image_id".
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import urllib.parse
import urllib.request
from typing import Any

import boto3

SOURCE_ACCOUNT = "111111111111"
TARGET_ACCOUNT = "222222222222"
REGION = "us-east-1"
ROLE_ARN = f"arn:aws:iam::{SOURCE_ACCOUNT}:role/amishare"
KEY_ALIAS = "alias/amishare-demo"
IMAGE_NAME = "amishare-demo"


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="server URL, http://127.0.0.1:PORT")
    parser.add_argument(
        "--aws-managed",
        action="store_true",
        help="also create an image under the account's AWS managed aws/ebs key",
    )
    parser.add_argument("--reset", action="store_true", help="clear the server's state first")
    arguments = parser.parse_args(argv)
    host = urllib.parse.urlsplit(arguments.endpoint).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        parser.error(
            f"--endpoint {arguments.endpoint} is not a loopback URL: seed only the local test "
            "server, for example http://127.0.0.1:PORT"
        )
    return arguments


def source_session(endpoint: str) -> boto3.Session:
    """Return a session whose credentials act in the source account."""
    sts = boto3.client(
        "sts",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    credentials = sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="seed-demo")["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def default_key_policy(account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )


def image_from_new_volume(ec2: Any, name: str, key_id: str | None) -> tuple[str, str]:
    """Create an encrypted volume, snapshot it and register an image; return (image, snapshot)."""
    volume_arguments: dict[str, Any] = {
        "Size": 8,
        "AvailabilityZone": f"{REGION}a",
        "VolumeType": "gp3",
        "Encrypted": True,
    }
    if key_id:
        volume_arguments["KmsKeyId"] = key_id
    volume = ec2.create_volume(**volume_arguments)
    snapshot_id = ec2.create_snapshot(
        VolumeId=volume["VolumeId"], Description=f"root volume of {name}"
    )["SnapshotId"]
    image_id = ec2.register_image(
        Name=name,
        Architecture="x86_64",
        VirtualizationType="hvm",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id, "VolumeType": "gp3"}}
        ],
    )["ImageId"]
    return image_id, snapshot_id


def seed(endpoint: str, aws_managed: bool) -> dict[str, str]:
    session = source_session(endpoint)
    kms = session.client("kms", endpoint_url=endpoint)
    ec2 = session.client("ec2", endpoint_url=endpoint)

    key = kms.create_key(
        Description="amishare demo key", Policy=default_key_policy(SOURCE_ACCOUNT)
    )["KeyMetadata"]
    kms.create_alias(AliasName=KEY_ALIAS, TargetKeyId=key["KeyId"])
    image_id, snapshot_id = image_from_new_volume(ec2, IMAGE_NAME, key["KeyId"])

    world = {
        "image_id": image_id,
        "snapshot_id": snapshot_id,
        "key_id": key["KeyId"],
        "key_arn": key["Arn"],
        "source_account": SOURCE_ACCOUNT,
        "target_account": TARGET_ACCOUNT,
        "region": REGION,
    }
    if aws_managed:
        world["aws_managed_image_id"], _snapshot = image_from_new_volume(
            ec2, f"{IMAGE_NAME}-aws-managed", None
        )
    return world


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    # Dummy credentials only; nothing from the user's AWS configuration.
    os.environ.pop("AWS_PROFILE", None)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    if arguments.reset:
        request = urllib.request.Request(f"{arguments.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
    print(json.dumps(seed(arguments.endpoint, arguments.aws_managed)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
