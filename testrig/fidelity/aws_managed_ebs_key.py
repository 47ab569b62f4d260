"""The aws/ebs key of each account and region is an AWS managed key whose policy is fixed.

AWS: KMS creates the AWS managed key with alias aws/ebs the first time an account needs it in a
region. DescribeKey on the alias creates it (KMS API Reference: DescribeKey), and so does an
encrypted CreateVolume that names no key. Its KeyManager is AWS, its description is "Default key
that protects my EBS volumes when no other key is defined", and its policy (Id auto-ebs-2) lets
principals of the account use it only through EC2 and gives the account read access. That
description and policy are as DescribeKey and GetKeyPolicy return them in real accounts (public
Terraform imports, and the sample output in the Ansible amazon.aws kms_key_info documentation).
No statement allows kms:PutKeyPolicy, so PutKeyPolicy fails with AccessDeniedException "User:
ARN is not authorized to perform: kms:PutKeyPolicy on resource: KEY because no resource-based
policy allows the kms:PutKeyPolicy action" for every caller. ListAliases lists AWS managed
aliases whose key does not exist yet without a TargetKeyId (KMS API Reference: ListAliases).
The other reserved aws/* aliases get KeyManager AWS here too, with moto's default policy.

moto 5.2.5: creates the key lazily too, but as a customer managed key (KeyManager CUSTOMER) with
the default policy that allows kms:* to the account root, so PutKeyPolicy on it succeeds, and
ListAliases reports a fixed made-up TargetKeyId for aws/ebs before the key exists.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.kms.models import KmsBackend, kms_backends
from moto.kms.responses import KmsResponse
from moto.kms.utils import RESERVED_ALIASES
from moto.utilities.utils import get_partition

NAME = "aws-managed-ebs-key"

EBS_ALIAS = "alias/aws/ebs"
EBS_KEY_DESCRIPTION = "Default key that protects my EBS volumes when no other key is defined"


def apply() -> None:
    KmsBackend._generate_default_keys = _wrap_generate_default_keys(
        KmsBackend._generate_default_keys
    )
    EBSBackend._create_default_encryption_key = _create_default_encryption_key
    KmsResponse.put_key_policy = _wrap_put_key_policy(KmsResponse.put_key_policy)
    KmsResponse.list_aliases = _wrap_list_aliases(KmsResponse.list_aliases)


def ebs_key_policy(account_id: str, region: str) -> str:
    """Return the policy KMS gives the aws/ebs key of an account and region."""
    partition = get_partition(region)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "auto-ebs-2",
            "Statement": [
                {
                    "Sid": "Allow access through EBS for all principals in the account that "
                    "are authorized to use EBS",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:CreateGrant",
                        "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account_id,
                            "kms:ViaService": f"ec2.{region}.amazonaws.com",
                        }
                    },
                },
                {
                    "Sid": "Allow direct access to key metadata to the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                    "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                    "Resource": "*",
                },
            ],
        }
    )


def _wrap_generate_default_keys(moto_generate_default_keys: Any) -> Any:
    def generate_default_keys(self: KmsBackend, alias_name: str) -> str | None:
        key_id = moto_generate_default_keys(self, alias_name)
        if key_id is None:
            return None
        key = self.keys[key_id]
        key.key_manager = "AWS"
        if alias_name == EBS_ALIAS:
            key.description = EBS_KEY_DESCRIPTION
            key.policy = ebs_key_policy(self.account_id, self.region_name)
        return key_id

    return generate_default_keys


def _create_default_encryption_key(self: EBSBackend) -> str:
    # Resolving the reserved alias creates the AWS managed key on first use.
    kms = kms_backends[self.account_id][self.region_name]
    key = kms.describe_key(EBS_ALIAS)
    self.default_kms_key_id = key.arn
    return key.arn


def caller_arn(response: Any) -> str:
    """Return the ARN KMS names in an AccessDeniedException for the caller of `response`."""
    from moto.sts.models import sts_backends

    account_id = response.current_account
    sts = sts_backends[account_id]["global"]
    role = sts.get_assumed_role_from_access_key(response.get_access_key())
    if role is not None:
        return role.arn
    return f"arn:{get_partition(response.region)}:iam::{account_id}:root"


def _wrap_put_key_policy(moto_put_key_policy: Any) -> Any:
    def put_key_policy(self: KmsResponse) -> str:
        key_id = self._get_param("KeyId")
        backend = self.kms_backend
        key = backend.keys.get(backend.get_key_id(key_id or ""))
        if key is not None and key.key_manager == "AWS":
            raise JsonRESTError(
                "AccessDeniedException",
                f"User: {caller_arn(self)} is not authorized to perform: kms:PutKeyPolicy on "
                f"resource: {key.arn} because no resource-based policy allows the "
                "kms:PutKeyPolicy action",
            )
        return moto_put_key_policy(self)

    return put_key_policy


def _wrap_list_aliases(moto_list_aliases: Any) -> Any:
    def list_aliases(self: KmsResponse) -> str:
        result = json.loads(moto_list_aliases(self))
        keys = self.kms_backend.keys
        for alias in result["Aliases"]:
            target = alias.get("TargetKeyId")
            if alias["AliasName"] in RESERVED_ALIASES and target not in keys:
                del alias["TargetKeyId"]
        return json.dumps(result)

    return list_aliases
