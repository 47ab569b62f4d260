"""DescribeImages shows an account the images other accounts share with it.

AWS: the images an account can describe are its own, public images and images of other
accounts that list it in their launchPermission. ExecutableUsers=self (or the caller's own
account id) selects the images shared with the caller, ExecutableUsers=all the public ones and
ExecutableUsers=ID those shared with account ID; Owners=ID selects the images of that owner that
the caller can see (EC2 API Reference: DescribeImages). Only the owner can change an image's
attributes (EC2 API Reference: ModifyImageAttribute).

moto 5.2.5: searches only the caller's own account, so an image shared with the caller is
InvalidAMIID.NotFound by id and missing from every listing, and ExecutableUsers returns public
images whatever value it is given.

NOTE: images shared with an organization or OU are not shown to its member accounts, because
moto does not know which organization an account belongs to.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import InvalidAMIIdError, MalformedAMIIdError
from moto.ec2.models.amis import AmiBackend
from moto.ec2.utils import generic_filter

from . import _resources

NAME = "shared-image-visibility"


def apply() -> None:
    AmiBackend.describe_images = _describe_images
    AmiBackend.modify_image_attribute = _owner_only(AmiBackend.modify_image_attribute)


def _describe_images(
    self: AmiBackend,
    ami_ids: list[str] | None = None,
    filters: dict[str, Any] | None = None,
    exec_users: list[str] | None = None,
    owners: list[str] | None = None,
) -> list[Any]:
    account_id = self.account_id
    images = list(self.amis.copy().values())
    images += [i for i in _resources.foreign_images(self) if _resources.can_launch(i, account_id)]

    if ami_ids:
        malformed = [ami_id for ami_id in ami_ids if not ami_id.startswith("ami-")]
        if malformed:
            raise MalformedAMIIdError(malformed)
        images = [image for image in images if image.id in ami_ids]
        deleted = [ami_id for ami_id in ami_ids if ami_id in self.deleted_amis]
        # NOTE: like moto, this fails only when none of the ids is found. EC2 may fail as soon as
        # one of them is unknown.
        if not images and not deleted:
            raise InvalidAMIIdError(ami_ids)
        return images

    if exec_users:
        images = [image for image in images if _executable_by(image, exec_users, account_id)]
    if owners:
        owners = [account_id if owner == "self" else owner for owner in owners]
        images = [i for i in images if i.owner_id in owners or i.owner_alias in owners]
    if filters:
        images = generic_filter(filters, images)
    return images


def _executable_by(image: Any, exec_users: list[str], account_id: str) -> bool:
    for user in exec_users:
        if user == "all" and image.is_public:
            return True
        user_id = account_id if user == "self" else user
        if {"UserId": user_id} in image.launch_permissions:
            return True
    return False


def _owner_only(moto_method: Any) -> Any:
    # moto finds the image through describe_images, which now also returns shared images.
    def modify_image_attribute(self: AmiBackend, ami_id: str, *args: Any, **kwargs: Any) -> Any:
        if ami_id not in self.amis:
            raise InvalidAMIIdError(ami_id)
        return moto_method(self, ami_id, *args, **kwargs)

    return modify_image_attribute
