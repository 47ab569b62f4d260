"""Helpers that build the AWS resources the tests start from."""

from __future__ import annotations

import time
from typing import Any

from conftest import REGION, SOURCE_ACCOUNT, Rig


def make_key(
    rig: Rig, account: str = SOURCE_ACCOUNT, region: str = REGION, alias: str = ""
) -> dict:
    kms = rig.client("kms", account, region)
    key = kms.create_key(Description="testrig key")["KeyMetadata"]
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return key


def make_snapshot(
    rig: Rig, account: str = SOURCE_ACCOUNT, region: str = REGION, key_id: str | None = None
) -> str:
    """Return the id of a snapshot of a new volume, encrypted under `key_id` when one is given."""
    ec2 = rig.client("ec2", account, region)
    volume_arguments: dict[str, Any] = {"Size": 8, "AvailabilityZone": f"{region}a"}
    if key_id:
        volume_arguments.update(Encrypted=True, KmsKeyId=key_id)
    volume = ec2.create_volume(**volume_arguments)
    return ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]


def register_image(
    rig: Rig,
    snapshot_id: str,
    account: str = SOURCE_ACCOUNT,
    region: str = REGION,
    name: str = "testrig-image",
) -> str:
    ec2 = rig.client("ec2", account, region)
    return ec2.register_image(
        Name=name,
        Architecture="x86_64",
        VirtualizationType="hvm",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}],
    )["ImageId"]


def make_encrypted_image(
    rig: Rig, account: str = SOURCE_ACCOUNT, region: str = REGION, name: str = "testrig-image"
) -> tuple[str, str, dict]:
    """Return (image id, snapshot id, key metadata) of an image under a new customer key."""
    key = make_key(rig, account, region)
    snapshot_id = make_snapshot(rig, account, region, key["KeyId"])
    return register_image(rig, snapshot_id, account, region, name), snapshot_id, key


def image_of(ec2: Any, image_id: str) -> dict:
    return ec2.describe_images(ImageIds=[image_id])["Images"][0]


def snapshot_of(ec2: Any, snapshot_id: str) -> dict:
    return ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]


def image_snapshot_ids(image: dict) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]


def wait_for_image_state(ec2: Any, image_id: str, expected: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        image = image_of(ec2, image_id)
        if image["State"] == expected or time.monotonic() > deadline:
            return image
        time.sleep(0.1)
