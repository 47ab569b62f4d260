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


@pytest.mark.parametrize(
    "statement",
    [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
            "NotAction": "kms:ScheduleKeyDeletion",
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111111111111:role/ops/amishare"},
            "Action": "kms:Put*",
            "Resource": "*",
        },
    ],
    ids=["not-action", "role-with-path"],
)
def test_put_key_policy_lockout_counts(rig: Rig, statement: dict) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key = make_key(rig)
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy)


def test_put_key_policy_lockout_not_action_excluding_put(rig: Rig) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key = make_key(rig)
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
        "NotAction": "kms:Put*",
        "Resource": "*",
    }
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    with pytest.raises(ClientError) as error:
        kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy)
    assert error_code(error) == "MalformedPolicyDocumentException"


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


# Key policies that DescribeKey reads

# Statement is a single object here, which the IAM policy grammar allows.
SINGLE_STATEMENT_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
    }
)

# On AWS, no Deny statement here applies to DescribeKey by either account. The first names other
# actions and the second exempts kms:DescribeKey through NotAction. The condition of the third is
# false for both accounts.
MIXED_STATEMENTS_POLICY = root_policy(
    SOURCE_ACCOUNT,
    {
        "Sid": "amishare-222222222222",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{TARGET_ACCOUNT}:root"},
        "Action": ["kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt"],
        "Resource": "*",
    },
    {
        "Sid": "Deny deletion except by the admin role",
        "Effect": "Deny",
        "NotPrincipal": {
            "AWS": [
                f"arn:aws:iam::{SOURCE_ACCOUNT}:role/admin",
                f"arn:aws:iam::{SOURCE_ACCOUNT}:root",
            ]
        },
        "Action": ["kms:ScheduleKeyDeletion", "kms:DisableKey"],
        "Resource": "*",
    },
    {
        "Sid": "Deny the target account all but use",
        "Effect": "Deny",
        "Principal": {"AWS": f"arn:aws:iam::{TARGET_ACCOUNT}:root"},
        "NotAction": ["kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt"],
        "Resource": "*",
    },
    {
        "Sid": "Deny callers outside both accounts",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "kms:*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"kms:CallerAccount": [SOURCE_ACCOUNT, TARGET_ACCOUNT]}},
    },
)

# Tabs, carriage returns and line feeds are allowed in a key policy (KMS Developer Guide:
# Creating a key policy, Key policy format).
WHITESPACE_POLICY = (
    '\n{\t"Version" :  "2012-10-17",\r\n\r\n  "Statement":[\n\t\t{ "Sid" : "Enable IAM User'
    ' Permissions",\n"Effect":"Allow",   "Principal":{"AWS":\t"arn:aws:iam::111111111111:root"},'
    '\r\n "Action" : "kms:*" ,"Resource":"*"}\n\n]\t}\n\n'
)


def create_key_with_policy(rig: Rig, operation: str, policy: str) -> dict:
    """Return the metadata of a new key with `policy`, set by CreateKey or PutKeyPolicy."""
    kms = rig.client("kms", SOURCE_ACCOUNT)
    if operation == "create-key":
        return kms.create_key(Policy=policy)["KeyMetadata"]
    key = make_key(rig)
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy)
    return key


@pytest.mark.parametrize("operation", ["create-key", "put-key-policy"])
@pytest.mark.parametrize(
    "policy",
    [SINGLE_STATEMENT_POLICY, MIXED_STATEMENTS_POLICY, WHITESPACE_POLICY],
    ids=["single-statement", "mixed-statements", "whitespace"],
)
def test_key_policy_shapes_readable(rig: Rig, operation: str, policy: str) -> None:
    kms = rig.client("kms", SOURCE_ACCOUNT)
    key_id = create_key_with_policy(rig, operation, policy)["KeyId"]

    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    stored = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    assert stored == policy
    assert key_id in [key["KeyId"] for key in kms.list_keys()["Keys"]]
    assert kms.list_key_policies(KeyId=key_id)["PolicyNames"] == ["default"]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False


def test_mixed_statements_other_account(rig: Rig) -> None:
    key_arn = create_key_with_policy(rig, "put-key-policy", MIXED_STATEMENTS_POLICY)["Arn"]
    described = rig.client("kms", TARGET_ACCOUNT).describe_key(KeyId=key_arn)["KeyMetadata"]
    assert described["Arn"] == key_arn


# Deny statements as seen by a caller in the target account.
@pytest.mark.parametrize(
    ("statement", "denied"),
    [
        ({"Principal": {"AWS": f"arn:aws:iam::{TARGET_ACCOUNT}:root"}, "Action": "kms:*"}, True),
        ({"Principal": {"AWS": [TARGET_ACCOUNT]}, "Action": ["kms:describekey"]}, True),
        ({"Principal": "*", "Action": "kms:Desc*"}, True),
        (
            {
                "Principal": {"AWS": f"arn:aws:iam::{TARGET_ACCOUNT}:role/amishare"},
                "NotAction": "kms:Decrypt",
            },
            True,
        ),
        ({"Principal": {"AWS": "*"}, "Action": "kms:DescribeKey", "Resource": ["*"]}, True),
        ({"Principal": {"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"}, "Action": "kms:*"}, False),
        ({"Principal": {"Service": "ec2.amazonaws.com"}, "Action": "kms:*"}, False),
        ({"Principal": "*", "NotAction": ["kms:Describe*", "kms:Decrypt"]}, False),
        ({"Principal": "*", "Action": "kms:DescribeKey", "NotResource": "*"}, False),
        ({"Principal": "*", "Action": "kms:Decrypt"}, False),
    ],
    ids=[
        "account-root",
        "account-id-lowercase-action",
        "anyone-wildcard-action",
        "role-not-action",
        "resource-list",
        "other-account",
        "service-principal",
        "not-action-exempts",
        "not-resource-excludes",
        "other-action",
    ],
)
def test_describe_key_deny_statements(rig: Rig, statement: dict, denied: bool) -> None:
    deny = {"Sid": "deny", "Effect": "Deny", "Resource": "*", **statement}
    if "NotResource" in statement:
        del deny["Resource"]
    policy = root_policy(SOURCE_ACCOUNT, deny)
    key_arn = create_key_with_policy(rig, "put-key-policy", policy)["Arn"]
    target = rig.client("kms", TARGET_ACCOUNT)

    if not denied:
        assert target.describe_key(KeyId=key_arn)["KeyMetadata"]["Arn"] == key_arn
        return
    with pytest.raises(ClientError) as error:
        target.describe_key(KeyId=key_arn)
    assert error_code(error) == "AccessDeniedException"
    message = error.value.response["Error"]["Message"]
    assert f"arn:aws:sts::{TARGET_ACCOUNT}:assumed-role/amishare/testrig" in message
    assert "kms:DescribeKey" in message
    assert key_arn in message


def test_describe_key_ignores_conditions(rig: Rig) -> None:
    deny = {
        "Sid": "deny",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:*",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:CallerAccount": SOURCE_ACCOUNT}},
    }
    policy = root_policy(SOURCE_ACCOUNT, deny)
    key_id = create_key_with_policy(rig, "put-key-policy", policy)["KeyId"]
    # NOTE: AWS denies here, because the condition holds for the caller. The rig evaluates no
    # conditions, so it never denies on such a statement.
    assert rig.client("kms", SOURCE_ACCOUNT).describe_key(KeyId=key_id)["KeyMetadata"]


def test_single_statement_gap_in_moto(moto_rig: Rig) -> None:
    key_id = create_key_with_policy(moto_rig, "create-key", SINGLE_STATEMENT_POLICY)["KeyId"]
    with pytest.raises(ClientError) as error:
        moto_rig.client("kms", SOURCE_ACCOUNT).describe_key(KeyId=key_id)
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_deny_statement_gap_in_moto(moto_rig: Rig) -> None:
    key_id = create_key_with_policy(moto_rig, "put-key-policy", MIXED_STATEMENTS_POLICY)["KeyId"]
    with pytest.raises(ClientError) as error:
        moto_rig.client("kms", SOURCE_ACCOUNT).describe_key(KeyId=key_id)
    assert error_code(error) == "AccessDeniedException"


@pytest.mark.parametrize(
    "policy",
    ["{not json", "[]", '"kms:*"', "{}", '{"Statement": "kms:*"}', '{"Statement": [1, null]}'],
)
def test_deny_check_skips_malformed_policy(policy: str) -> None:
    from fidelity import describe_key_policy

    key_arn = f"arn:aws:kms:{REGION}:{SOURCE_ACCOUNT}:key/0d7d0d6c-0000-4000-8000-000000000000"
    assert describe_key_policy.denying_statement(policy, "kms:DescribeKey", key_arn, {"*"}) is None
