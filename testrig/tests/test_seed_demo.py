"""seed_demo.py builds the demo world and prints its ids."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO_ROOT, SOURCE_ACCOUNT, TARGET_ACCOUNT, Rig
from world import image_of, image_snapshot_ids, snapshot_of

SEED_DEMO = REPO_ROOT / "testrig" / "seed_demo.py"


def run_seed_demo(rig: Rig, *arguments: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(SEED_DEMO), "--endpoint", rig.url, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_seed_demo_world(rig: Rig) -> None:
    world = run_seed_demo(rig)

    assert world["source_account"] == SOURCE_ACCOUNT
    assert world["target_account"] == TARGET_ACCOUNT
    assert "aws_managed_image_id" not in world
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    image = image_of(ec2, world["image_id"])
    assert image["Name"] == "amishare-demo"
    assert image["OwnerId"] == SOURCE_ACCOUNT
    assert image_snapshot_ids(image) == [world["snapshot_id"]]
    assert snapshot_of(ec2, world["snapshot_id"])["KmsKeyId"] == world["key_arn"]

    kms = rig.client("kms", SOURCE_ACCOUNT)
    key = kms.describe_key(KeyId="alias/amishare-demo")["KeyMetadata"]
    assert key["KeyId"] == world["key_id"]
    assert key["KeyManager"] == "CUSTOMER"
    policy = json.loads(kms.get_key_policy(KeyId=world["key_id"], PolicyName="default")["Policy"])
    assert policy["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"}
    assert policy["Statement"][0]["Action"] == "kms:*"


def test_seed_demo_aws_managed(rig: Rig) -> None:
    world = run_seed_demo(rig, "--aws-managed")
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    [snapshot_id] = image_snapshot_ids(image_of(ec2, world["aws_managed_image_id"]))
    ebs_key = rig.client("kms", SOURCE_ACCOUNT).describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert snapshot_of(ec2, snapshot_id)["KmsKeyId"] == ebs_key["Arn"]
    assert ebs_key["KeyManager"] == "AWS"


def test_seed_demo_reset_reseeds(rig: Rig) -> None:
    first = run_seed_demo(rig)
    second = run_seed_demo(rig, "--reset")
    assert first["image_id"] != second["image_id"]


def test_seed_demo_rejects_remote_endpoint() -> None:
    result = subprocess.run(
        [sys.executable, str(SEED_DEMO), "--endpoint", "https://ec2.us-east-1.amazonaws.com"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "not a loopback URL" in result.stderr
