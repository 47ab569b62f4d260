"""PutKeyPolicy and CreateKey reject key policies that KMS would reject.

AWS: KMS rejects a key policy that is not a valid policy document with
MalformedPolicyDocumentException (KMS API Reference: PutKeyPolicy, CreateKey). A principal
given as a unique id (AIDA... for a user, AROA... for a role, what KMS shows once the principal
is deleted) fails with "Policy contains a statement with one or more invalid principals." (AWS
Knowledge Center: kms-policy-error-invalid-principals). Unless BypassPolicyLockoutSafetyCheck
is set, the policy must allow the calling principal to call PutKeyPolicy again, or KMS fails with
"The new key policy will not allow you to update the key policy in the future." (KMS API
Reference: PutKeyPolicy, parameter Policy). PolicyName may only be "default", which moto also
enforces.

moto 5.2.5: stores any string as the policy, including text that is not JSON.

NOTE: The lockout check here counts an Allow statement whose Action covers kms:PutKeyPolicy
(wildcards included), or whose NotAction does not, for the caller's account root, its role (by
name, whatever the path), "*" or the account id, and ignores conditions and Deny statements. KMS also rejects principals that do not exist and policies over
32 KB; neither is checked here.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.kms.responses import KmsResponse

from . import aws_managed_ebs_key

NAME = "key-policy-validation"

MALFORMED_MESSAGE = (
    "The request was rejected because the specified policy is not syntactically or "
    "semantically correct."
)
INVALID_PRINCIPAL_MESSAGE = "Policy contains a statement with one or more invalid principals."
LOCKOUT_MESSAGE = "The new key policy will not allow you to update the key policy in the future."

# Prefixes of IAM unique ids (IAM User Guide: IAM identifiers, unique identifiers).
UNIQUE_ID = re.compile(r"^(AIDA|AROA|AGPA|AIPA|ANPA|ANVA|ASIA|AKIA)[A-Z0-9]{12,}$")


def apply() -> None:
    KmsResponse.put_key_policy = _wrap_policy_call(KmsResponse.put_key_policy)
    KmsResponse.create_key = _wrap_policy_call(KmsResponse.create_key)


def _wrap_policy_call(moto_method: Any) -> Any:
    def method(self: KmsResponse) -> str:
        policy = self._get_param("Policy")
        if policy is not None:
            bypass = bool(self._get_param("BypassPolicyLockoutSafetyCheck", False))
            validate_policy(policy, get_caller_principals(self), check_lockout=not bypass)
        return moto_method(self)

    return method


def _malformed(message: str) -> JsonRESTError:
    return JsonRESTError("MalformedPolicyDocumentException", message)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def validate_policy(policy: str, caller_principals: set[str], check_lockout: bool) -> None:
    """Raise MalformedPolicyDocumentException unless `policy` is one KMS would store."""
    try:
        document = json.loads(policy)
    except ValueError:
        raise _malformed(MALFORMED_MESSAGE) from None
    if not isinstance(document, dict) or "Statement" not in document:
        raise _malformed(MALFORMED_MESSAGE)

    statements = _as_list(document["Statement"])
    sids = [s.get("Sid") for s in statements if isinstance(s, dict) and s.get("Sid")]
    if any(not isinstance(s, dict) for s in statements) or len(sids) != len(set(sids)):
        raise _malformed(MALFORMED_MESSAGE)

    for statement in statements:
        for principal in aws_principals(statement):
            if UNIQUE_ID.match(principal):
                raise _malformed(INVALID_PRINCIPAL_MESSAGE)

    if check_lockout and not any(
        _allows_put_key_policy(statement, caller_principals) for statement in statements
    ):
        raise _malformed(LOCKOUT_MESSAGE)


def aws_principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return [str(p) for p in _as_list(principal.get("AWS", []))]
    return []


def _covers_put_key_policy(patterns: Any) -> bool:
    """Return whether any IAM action pattern (wildcards * and ?) matches kms:PutKeyPolicy."""
    return any(
        fnmatch.fnmatchcase("kms:putkeypolicy", str(pattern).lower())
        for pattern in _as_list(patterns)
    )


def _allows_put_key_policy(statement: dict[str, Any], caller_principals: set[str]) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    if "Action" in statement:
        if not _covers_put_key_policy(statement["Action"]):
            return False
    elif "NotAction" not in statement or _covers_put_key_policy(statement["NotAction"]):
        return False
    return any(_names_caller(p, caller_principals) for p in aws_principals(statement))


def _names_caller(principal: str, caller_principals: set[str]) -> bool:
    """Return whether a policy principal names the caller.

    A role name is unique in its account whatever the role's path (IAM User Guide: IAM
    identifiers), so `role/ops/amishare` names the same role as `role/amishare`.
    """
    if principal in caller_principals:
        return True
    for caller in caller_principals:
        match = re.match(r"^arn:aws:iam::(\d{12}):role/([^/]+)$", caller)
        if match and re.match(
            rf"^arn:aws:iam::{match.group(1)}:role/(.+/)?{re.escape(match.group(2))}$", principal
        ):
            return True
    return False


def get_caller_principals(response: KmsResponse) -> set[str]:
    """Return the principal strings that name the caller in a key policy."""
    account_id = response.current_account
    caller = aws_managed_ebs_key.caller_arn(response)
    principals = {"*", account_id, f"arn:aws:iam::{account_id}:root", caller}
    # An assumed-role session is allowed through its role: arn:aws:iam::ACCOUNT:role/NAME.
    match = re.match(r"^arn:aws:sts::(\d{12}):assumed-role/([^/]+)/", caller)
    if match:
        principals.add(f"arn:aws:iam::{match.group(1)}:role/{match.group(2)}")
    return principals
