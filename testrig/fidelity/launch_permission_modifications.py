"""ModifyImageAttribute keeps every launch permission entry of a request and checks their form.

AWS: one ModifyImageAttribute call adds or removes any number of UserId, Group,
OrganizationArn and OrganizationalUnitArn entries, given either as LaunchPermission.Add.N /
LaunchPermission.Remove.N or, with OperationType, as the UserIds, UserGroups, OrganizationArns
and OrganizationalUnitArns lists. Each entry must be a 12-digit account id, the group "all", an
organization ARN (arn:aws:organizations::ACCOUNT:organization/o-ID) or an OU ARN
(arn:aws:organizations::ACCOUNT:ou/o-ID/ou-ID). Any other entry fails with
InvalidAMIAttributeItemValue, 'Invalid attribute item value "VALUE" for OrganizationArn item
type.' (EC2 API Reference: ModifyImageAttribute, LaunchPermission).

moto 5.2.5: with OperationType keeps only the first organization ARN, the first OU ARN and the
first group of the request, and accepts any text as an organization or OU ARN.
"""

from __future__ import annotations

import re
from typing import Any

from moto.core.responses import EmptyResult
from moto.ec2.exceptions import InvalidAMIAttributeItemValueError
from moto.ec2.responses.amis import AmisResponse

NAME = "launch-permission-modifications"

ORGANIZATION_ARN = re.compile(
    r"^arn:aws[a-z-]*:organizations::\d{12}:organization/o-[a-z0-9]{10,32}$"
)
OU_ARN = re.compile(
    r"^arn:aws[a-z-]*:organizations::\d{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$"
)


def apply() -> None:
    AmisResponse.modify_image_attribute = _modify_image_attribute


def _modify_image_attribute(self: AmisResponse) -> EmptyResult:
    ami_id = self._get_param("ImageId")
    requested = self._get_param("LaunchPermission", {}) or {}
    to_add = list(requested.get("Add", []))
    to_remove = list(requested.get("Remove", []))

    operation_type = self._get_param("OperationType")
    if operation_type in ("add", "remove"):
        entries = to_add if operation_type == "add" else to_remove
        entries += [{"Group": group} for group in self._get_param("UserGroups", [])]
        entries += [{"UserId": user_id} for user_id in self._get_param("UserIds", [])]
        entries += [{"OrganizationArn": arn} for arn in self._get_param("OrganizationArns", [])]
        entries += [
            {"OrganizationalUnitArn": arn} for arn in self._get_param("OrganizationalUnitArns", [])
        ]

    for entry in to_add + to_remove:
        _validate_entry(entry)

    self.error_on_dryrun()

    self.ec2_backend.modify_image_attribute(
        ami_id=ami_id,
        launch_permissions_to_add=to_add,
        launch_permissions_to_remove=to_remove,
    )
    return EmptyResult()


def _validate_entry(entry: dict[str, Any]) -> None:
    # moto's backend already checks UserId and Group the way EC2 does.
    organization_arn = entry.get("OrganizationArn")
    if organization_arn is not None and not ORGANIZATION_ARN.match(organization_arn):
        raise InvalidAMIAttributeItemValueError("OrganizationArn", organization_arn)
    ou_arn = entry.get("OrganizationalUnitArn")
    if ou_arn is not None and not OU_ARN.match(ou_arn):
        raise InvalidAMIAttributeItemValueError("OrganizationalUnitArn", ou_arn)
