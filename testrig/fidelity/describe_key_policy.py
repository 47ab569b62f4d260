"""DescribeKey reads a single-object Statement and denies only on Deny statements that match it.

AWS: the Statement element of a policy is a single statement object or an array of them (IAM User
Guide: IAM JSON policy elements: Statement), and KMS stores and returns a key policy in either
form. A Deny statement in the key policy makes DescribeKey fail with AccessDeniedException only
when it applies to the request, which takes four things. Its Principal names the caller, or its
NotPrincipal does not (IAM User Guide: AWS JSON policy elements: NotPrincipal). Its Action or
NotAction covers kms:DescribeKey, and its Resource or NotResource covers the key. Its Condition
block holds ("The policy statement is effective only when the conditions are true", KMS
Developer Guide: Condition keys for AWS KMS).

moto 5.2.5: DescribeKey runs moto.kms.policy_validator.validate_policy, which loops over
`policy["Statement"]`. For a single statement object that loop yields the object's keys, and
`str.get` raises AttributeError, so DescribeKey fails with HTTP 500. The validator also applies
every Deny statement whose Action contains kms:DescribeKey, kms:Describe* or kms:* and whose
Resource is "*" to every caller, whatever its Principal, NotPrincipal and Condition. DescribeKey
then fails with AccessDeniedException "Action kms:DescribeKey is now allowed by the given key
policy" on keys that AWS lets the caller describe. No other KMS operation reads the
policy: GetKeyPolicy returns the stored text unchanged, whitespace included.

NOTE: A Deny statement with a Condition or NotPrincipal block never denies here, because the rig
evaluates no condition keys and does not model NotPrincipal for role sessions, so DescribeKey
succeeds in some cases where AWS denies it. Allow statements are not checked, as in moto.
"""

from __future__ import annotations

import json
import re
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.kms.responses import KmsResponse

from . import aws_managed_ebs_key, key_policy_validation

NAME = "describe-key-policy"


def apply() -> None:
    # moto calls _validate_key_policy from DescribeKey only.
    KmsResponse._validate_key_policy = _validate_key_policy


def _validate_key_policy(self: KmsResponse, key_id: str, action: str) -> None:
    backend = self.kms_backend
    key = backend.describe_key(backend.get_key_id(key_id))
    caller_principals = key_policy_validation.get_caller_principals(self)
    if denying_statement(key.policy, action, key.arn, caller_principals) is not None:
        # NOTE: This message follows the IAM form for an explicit deny in a resource-based
        # policy, but it is not copied from a KMS response.
        raise JsonRESTError(
            "AccessDeniedException",
            f"User: {aws_managed_ebs_key.caller_arn(self)} is not authorized to perform: "
            f"{action} on resource: {key.arn} with an explicit deny in a resource-based policy",
        )


def denying_statement(
    policy: str, action: str, key_arn: str, caller_principals: set[str]
) -> dict[str, Any] | None:
    """Return the first Deny statement of `policy` that applies to `action` by the caller.

    A policy that is not a JSON object with statements, which moto stores when the
    key-policy-validation patch is disabled, has none.
    """
    try:
        document = json.loads(policy)
    except (TypeError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    statements = document.get("Statement", [])
    if not isinstance(statements, list):
        statements = [statements]
    for statement in statements:
        if isinstance(statement, dict) and _deny_applies(
            statement, action, key_arn, caller_principals
        ):
            return statement
    return None


def _deny_applies(
    statement: dict[str, Any], action: str, key_arn: str, caller_principals: set[str]
) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    if "Condition" in statement or "NotPrincipal" in statement:
        return False
    if not any(p in caller_principals for p in key_policy_validation.aws_principals(statement)):
        return False
    covers_action = _element_covers(statement, "Action", action, ignore_case=True)
    covers_key = _element_covers(statement, "Resource", key_arn, ignore_case=False)
    return covers_action and covers_key


def _element_covers(statement: dict[str, Any], element: str, value: str, ignore_case: bool) -> bool:
    """Return whether `element` (Action or Resource) or its Not form matches `value`.

    A statement with neither element covers nothing.
    """
    if element in statement:
        return _any_pattern_matches(statement[element], value, ignore_case)
    negated = f"Not{element}"
    if negated in statement:
        return not _any_pattern_matches(statement[negated], value, ignore_case)
    return False


def _any_pattern_matches(patterns: Any, value: str, ignore_case: bool) -> bool:
    if not isinstance(patterns, list):
        patterns = [patterns]
    return any(_wildcard_match(str(pattern), value, ignore_case) for pattern in patterns)


def _wildcard_match(pattern: str, value: str, ignore_case: bool) -> bool:
    # * matches any run of characters and ? one character, and action names are case-insensitive
    # (IAM User Guide: IAM JSON policy elements: Action). Key ARNs are compared case-sensitively.
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch("".join(parts), value, flags) is not None
