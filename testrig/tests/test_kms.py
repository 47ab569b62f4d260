"""KMS: the AWS managed aws/ebs key, key policy validation and keys of other accounts."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from conftest import OTHER_REGION, REGION, SOURCE_ACCOUNT, TARGET_ACCOUNT, Rig
from world import make_key


def error_code(error: pytest.ExceptionInfo) -> str:
    return error.value.response["Error"]["Code"]


def root_policy(account: str, *extra_statements: dict) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                *extra_statements,
            ],
        }
    )


# aws/ebs


def test_ebs_key_is_aws_managed(rig: Rig) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert key["KeyManager"] == "AWS"
    assert key["AWSAccountId"] == SOURCE_ACCOUNT
    assert key["Description"].startswith("Default key that protects my EBS volumes")

    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert policy["Id"] == "auto-ebs-2"
    condition = policy["Statement"][0]["Condition"]["StringEquals"]
    assert condition["kms:CallerAccount"] == SOURCE_ACCOUNT
    assert condition["kms:ViaService"] == f"ec2.{REGION}.amazonaws.com"


def test_ebs_key_policy_cannot_change(rig: Rig) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    with pytest.raises(ClientError) as error:
        kms.put_key_policy(
            KeyId=key["Arn"], PolicyName="default", Policy=root_policy(SOURCE_ACCOUNT)
        )
    assert error_code(error) == "AccessDeniedException"
    message = error.value.response["Error"]["Message"]
    assert "arn:aws:sts::111111111111:assumed-role/amishare/testrig" in message
    assert "kms:PutKeyPolicy" in message


def test_ebs_key_per_account_and_region(rig: Rig) -> None:
    arns = {
        rig.client("kms", account, region).describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
        for account in (SOURCE_ACCOUNT, TARGET_ACCOUNT)
        for region in (REGION, OTHER_REGION)
    }
    assert len(arns) == 4


def test_encrypted_volume_uses_ebs_key(rig: Rig) -> None:
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    volume = ec2.create_volume(Size=8, AvailabilityZone=f"{REGION}a", Encrypted=True)
    snapshot_id = ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]
    snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]

    key = rig.client("kms", SOURCE_ACCOUNT).describe_key(KeyId=volume["KmsKeyId"])["KeyMetadata"]
    assert key["KeyManager"] == "AWS"
    assert snapshot["KmsKeyId"] == key["Arn"]
    aliases = rig.client("kms", SOURCE_ACCOUNT).list_aliases(KeyId=key["KeyId"])["Aliases"]
    assert [alias["AliasName"] for alias in aliases] == ["alias/aws/ebs"]


def test_ebs_alias_listed_before_key_exists(rig: Rig) -> None:
    aliases = rig.client("kms", SOURCE_ACCOUNT).list_aliases()["Aliases"]
    [ebs] = [alias for alias in aliases if alias["AliasName"] == "alias/aws/ebs"]
    assert "TargetKeyId" not in ebs


def test_ebs_key_gap_in_moto(moto_rig: Rig) -> None:
    kms = moto_rig.client("kms", SOURCE_ACCOUNT)
    key = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert key["KeyManager"] == "CUSTOMER"
    kms.put_key_policy(KeyId=key["Arn"], PolicyName="default", Policy=root_policy(SOURCE_ACCOUNT))


# Key policy validation


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("{not json", "not syntactically or semantically correct"),
        (json.dumps({"Version": "2012-10-17"}), "not syntactically or semantically correct"),
        (
            root_policy(
                SOURCE_ACCOUNT,
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                },
            ),
            "not syntactically or semantically correct",
        ),
        (
            root_policy(
                SOURCE_ACCOUNT,
                {
                    "Sid": "amishare-target",
                    "Effect": "Allow",
                    "Principal": {"AWS": ["AROAEXAMPLEUNIQUEID12"]},
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                },
            ),
            "one or more invalid principals",
        ),
        (
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
                            "Action": "kms:*",
                            "Resource": "*",
                        }
                    ],
                }
            ),
            "will not allow you to update the key policy",
        ),
    ],
    ids=["not-json", "no-statement", "duplicate-sid", "unique-id-principal", "lockout"],
)
def test_put_key_policy_rejects(rig: Rig, policy: str, message: str) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key = make_key(rig)
    with pytest.raises(ClientError) as error:
        kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy)
    assert error_code(error) == "MalformedPolicyDocumentException"
    assert message in error.value.response["Error"]["Message"]


def test_put_key_policy_accepts_valid(rig: Rig) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key = make_key(rig)
    target_statement = {
        "Sid": "amishare-222222222222",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
        "Action": ["kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt"],
        "Resource": "*",
    }
    policy = root_policy(SOURCE_ACCOUNT, target_statement)
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy)
    stored = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
    assert json.loads(stored) == json.loads(policy)


def test_put_key_policy_bypass_skips_lockout(rig: Rig) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key = make_key(rig)
    locked = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )
    kms.put_key_policy(
        KeyId=key["KeyId"], PolicyName="default", Policy=locked, BypassPolicyLockoutSafetyCheck=True
    )


def test_put_key_policy_role_principal_passes_lockout(rig: Rig) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key = make_key(rig)
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::111111111111:role/amishare"},
                    "Action": ["kms:PutKeyPolicy", "kms:GetKeyPolicy"],
                    "Resource": "*",
                }
            ],
        }
    )
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy)


def test_create_key_rejects_invalid_policy(rig: Rig) -> None:
    with pytest.raises(ClientError) as error:
        rig.client("kms", SOURCE_ACCOUNT).create_key(Policy="{not json")
    assert error_code(error) == "MalformedPolicyDocumentException"


def test_policy_name_must_be_default(rig: Rig) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key = make_key(rig)
    with pytest.raises(ClientError) as error:
        kms.get_key_policy(KeyId=key["KeyId"], PolicyName="other")
    assert error_code(error) == "NotFoundException"


def test_key_policy_gap_in_moto(moto_rig: Rig) -> None:
    kms = moto_rig.client("kms", SOURCE_ACCOUNT)
    key = make_key(moto_rig)
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy="{not json")
    stored = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
    assert stored == "{not json"


# Keys of other accounts


def test_other_account_key_by_arn(rig: Rig) -> None:
    key = make_key(rig)
    target = rig.client("kms", TARGET_ACCOUNT)

    described = target.describe_key(KeyId=key["Arn"])["KeyMetadata"]
    assert described["AWSAccountId"] == SOURCE_ACCOUNT
    assert described["KeyManager"] == "CUSTOMER"

    grant = target.create_grant(
        KeyId=key["Arn"],
        GranteePrincipal=f"arn:aws:iam::{TARGET_ACCOUNT}:root",
        Operations=["Decrypt", "DescribeKey"],
    )
    grants = rig.client("kms", SOURCE_ACCOUNT).list_grants(KeyId=key["KeyId"])["Grants"]
    assert [g["GrantId"] for g in grants] == [grant["GrantId"]]

    ciphertext = target.encrypt(KeyId=key["Arn"], Plaintext=b"secret")["CiphertextBlob"]
    plaintext = target.decrypt(CiphertextBlob=ciphertext, KeyId=key["Arn"])["Plaintext"]
    assert plaintext == b"secret"


def test_other_account_alias_arn(rig: Rig) -> None:
    key = make_key(rig, alias="alias/shared")
    target = rig.client("kms", TARGET_ACCOUNT)
    alias_arn = f"arn:aws:kms:{REGION}:{SOURCE_ACCOUNT}:alias/shared"
    assert target.describe_key(KeyId=alias_arn)["KeyMetadata"]["Arn"] == key["Arn"]


def test_other_account_key_policy_not_readable(rig: Rig) -> None:
    key = make_key(rig)
    target = rig.client("kms", TARGET_ACCOUNT)
    with pytest.raises(ClientError) as error:
        target.get_key_policy(KeyId=key["Arn"], PolicyName="default")
    assert error_code(error) == "NotFoundException"


def test_unknown_key_grant_not_found(rig: Rig) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    with pytest.raises(ClientError) as error:
        kms.create_grant(
            KeyId="0d7d0d6c-0000-4000-8000-000000000000",
            GranteePrincipal="arn:aws:iam::222222222222:root",
            Operations=["Decrypt"],
        )
    assert error_code(error) == "NotFoundException"


def test_other_account_key_gap_in_moto(moto_rig: Rig) -> None:
    key = make_key(moto_rig)
    with pytest.raises(ClientError) as error:
        moto_rig.client("kms", TARGET_ACCOUNT).describe_key(KeyId=key["Arn"])
    assert error_code(error) == "NotFoundException"
