"""The call log at /_rig/calls."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError
from conftest import DEFAULT_ACCOUNT, SOURCE_ACCOUNT, TARGET_ACCOUNT, Rig
from world import make_key, make_snapshot, register_image

import calllog

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


def root_policy(account: str) -> str:
    statement = {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_put_key_policy_logged_without_bypass(rig: Rig) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key_id = make_key(rig)["KeyId"]
    policy = root_policy(SOURCE_ACCOUNT)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy)

    [call] = rig.calls(action="PutKeyPolicy")
    assert call["bypass_lockout_check"] is False
    assert call["account"] == SOURCE_ACCOUNT
    # The stored policy shows that moto could read the body after the call log had read it.
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == policy


def test_put_key_policy_logged_with_bypass(rig: Rig) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key_id = make_key(rig)["KeyId"]
    policy = root_policy(SOURCE_ACCOUNT)
    kms.put_key_policy(
        KeyId=key_id, PolicyName="default", Policy=policy, BypassPolicyLockoutSafetyCheck=True
    )

    [call] = rig.calls(action="PutKeyPolicy")
    assert call["bypass_lockout_check"] is True
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == policy


def test_put_key_policy_logged_bypass_false(rig: Rig) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key_id = make_key(rig)["KeyId"]
    kms.put_key_policy(
        KeyId=key_id,
        PolicyName="default",
        Policy=root_policy(SOURCE_ACCOUNT),
        BypassPolicyLockoutSafetyCheck=False,
    )
    [call] = rig.calls(action="PutKeyPolicy")
    assert call["bypass_lockout_check"] is False


def test_create_key_logged_bypass(rig: Rig) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    kms.create_key(Description="without flag")
    policy = root_policy(SOURCE_ACCOUNT)
    key = kms.create_key(Policy=policy, BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]

    calls = rig.calls(action="CreateKey")
    assert [call["bypass_lockout_check"] for call in calls] == [False, True]
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_bypass_field_only_on_policy_calls(rig: Rig) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key_id = make_key(rig)["KeyId"]
    kms.get_key_policy(KeyId=key_id, PolicyName="default")
    kms.list_keys()
    rig.client("ec2", SOURCE_ACCOUNT).describe_images(Owners=["self"])

    for call in rig.calls():
        if call["action"] == "CreateKey":
            assert call["bypass_lockout_check"] is False
        else:
            assert "bypass_lockout_check" not in call, call


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"BypassPolicyLockoutSafetyCheck": true}', True),
        (b'{"KeyId": "k", "BypassPolicyLockoutSafetyCheck": false}', False),
        (b'{"KeyId": "k"}', False),
        (b'{"BypassPolicyLockoutSafetyCheck": "true"}', False),
        (b"[true]", False),
        (b"", False),
        (b"\xff{not json", False),
    ],
    ids=["true", "false", "absent", "string", "not-object", "empty", "not-json"],
)
def test_bypass_read_from_body(body: bytes, expected: bool) -> None:
    assert calllog.bypasses_lockout_check(body) is expected
