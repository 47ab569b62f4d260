"""KMS operations that AWS allows across accounts find a key of another account by its ARN.

AWS: DescribeKey, CreateGrant, ListGrants, RevokeGrant, RetireGrant, Encrypt, Decrypt,
GenerateDataKey, GenerateDataKeyWithoutPlaintext, GetPublicKey, Sign, Verify, GenerateMac and
VerifyMac work on a key of another account when the request names it by key ARN or alias ARN
(and the key policy allows it). GetKeyPolicy, PutKeyPolicy, ListAliases and the other management
operations work in the key's own account only. Sources: KMS Developer Guide, Allowing users in
other accounts to use a KMS key, and the "Cross-account use" line of each operation in the KMS
API Reference.

moto 5.2.5: looks every key up in the caller's own account, so a key ARN of another account is
NotFoundException, and CreateGrant, ListGrants and RevokeGrant on a key it cannot find
fail with HTTP 500.

No policy is enforced here: any account may use any other account's key. ReEncrypt is not
routed, because its source and destination keys may belong to different accounts.
"""

from __future__ import annotations

from typing import Any

from moto.kms.models import kms_backends
from moto.kms.responses import KmsResponse

from . import _resources

NAME = "cross-account-keys"

CROSS_ACCOUNT_METHODS = [
    "describe_key",
    "create_grant",
    "list_grants",
    "revoke_grant",
    "retire_grant",
    "encrypt",
    "decrypt",
    "generate_data_key",
    "generate_data_key_without_plaintext",
    "get_public_key",
    "sign",
    "verify",
    "generate_mac",
    "verify_mac",
]

# moto raises KeyError (HTTP 500) from these when the key does not exist.
GRANT_METHODS = {"create_grant", "list_grants", "revoke_grant"}


def apply() -> None:
    moto_backend_property = KmsResponse.kms_backend

    def kms_backend(self: KmsResponse) -> Any:
        owner = getattr(self, "_rig_key_owner", None)
        if owner is not None:
            return kms_backends[owner][self.region]
        return moto_backend_property.fget(self)

    KmsResponse.kms_backend = property(kms_backend)
    for method_name in CROSS_ACCOUNT_METHODS:
        setattr(KmsResponse, method_name, _route_to_owner(getattr(KmsResponse, method_name)))


def _route_to_owner(moto_method: Any) -> Any:
    def method(self: KmsResponse) -> str:
        self._rig_key_owner = _foreign_owner(self)
        try:
            if moto_method.__name__ in GRANT_METHODS:
                self._validate_key_id(self._get_param("KeyId") or "")
            return moto_method(self)
        finally:
            self._rig_key_owner = None

    method.__name__ = moto_method.__name__
    return method


def _foreign_owner(response: KmsResponse) -> str | None:
    """Return the account that owns the key named by an ARN, when that is not the caller's."""
    key_id = response._get_param("KeyId")
    if not isinstance(key_id, str):
        return None
    arn = _resources.parse_kms_arn(key_id)
    if arn is None:
        return None
    region, account_id, _resource = arn
    if account_id == response.current_account or region != response.region:
        return None
    return account_id
