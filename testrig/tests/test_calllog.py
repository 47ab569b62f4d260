"""The call log at /_rig/calls."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError
from conftest import DEFAULT_ACCOUNT, SOURCE_ACCOUNT, TARGET_ACCOUNT, Rig
from world import make_snapshot, register_image

MUTATING_ACTIONS = {"ModifyImageAttribute", "ModifySnapshotAttribute", "PutKeyPolicy", "CopyImage"}


def test_calls_record_service_action_account(rig: Rig) -> None:
    rig.client("ec2", SOURCE_ACCOUNT).describe_images(Owners=["self"])
    rig.client("kms", TARGET_ACCOUNT).list_keys()

    assert rig.calls() == [
        {
            "service": "sts",
            "action": "AssumeRole",
            "account": DEFAULT_ACCOUNT,
            "region": "us-east-1",
        },
        {
            "service": "ec2",
            "action": "DescribeImages",
            "account": SOURCE_ACCOUNT,
            "region": "us-east-1",
        },
        {
            "service": "sts",
            "action": "AssumeRole",
            "account": DEFAULT_ACCOUNT,
            "region": "us-east-1",
        },
        {"service": "kms", "action": "ListKeys", "account": TARGET_ACCOUNT, "region": "us-east-1"},
    ]


def test_calls_filter_by_account(rig: Rig) -> None:
    rig.client("ec2", SOURCE_ACCOUNT).describe_images(Owners=["self"])
    rig.client("ec2", TARGET_ACCOUNT, "us-west-2").describe_images(Owners=["self"])

    target_calls = rig.calls(account=TARGET_ACCOUNT)
    assert target_calls == [
        {
            "service": "ec2",
            "action": "DescribeImages",
            "account": TARGET_ACCOUNT,
            "region": "us-west-2",
        }
    ]
    assert len(rig.calls(service="sts")) == 2
    assert rig.calls(account="999999999999") == []


def test_calls_count_mutations(rig: Rig) -> None:
    image_id = register_image(rig, make_snapshot(rig))
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    rig.request("DELETE", "/_rig/calls")

    ec2.modify_image_attribute(
        ImageId=image_id, LaunchPermission={"Add": [{"UserId": TARGET_ACCOUNT}]}
    )
    ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")

    mutations = [c for c in rig.calls(account=SOURCE_ACCOUNT) if c["action"] in MUTATING_ACTIONS]
    assert [c["action"] for c in mutations] == ["ModifyImageAttribute"]
    assert len(rig.calls(action="DescribeImageAttribute")) == 1


def test_calls_delete_clears(rig: Rig) -> None:
    rig.client("kms").list_keys()
    assert rig.request("DELETE", "/_rig/calls") == {"cleared": 1}
    assert rig.calls() == []


def test_calls_record_failed_requests(rig: Rig) -> None:
    with pytest.raises(ClientError):
        rig.client("ec2").describe_images(ImageIds=["ami-0123456789abcdef0"])
    assert [c["action"] for c in rig.calls()] == ["DescribeImages"]


def test_moto_api_still_routed_and_not_recorded(rig: Rig) -> None:
    rig.client("kms").list_keys()
    assert rig.request("POST", "/moto-api/reset") == {"status": "ok"}
    assert [c["action"] for c in rig.calls()] == ["ListKeys"]


def test_unknown_rig_path_is_404(rig: Rig) -> None:
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{rig.url}/_rig/nothing", timeout=10)
    assert error.value.code == 404
