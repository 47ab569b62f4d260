"""DescribeImageAttribute on an unknown image fails with InvalidAMIID.NotFound, not HTTP 500.

AWS: DescribeImageAttribute on an image id that does not exist (or was deregistered) returns
HTTP 400 with InvalidAMIID.NotFound, and on an id that is not of the form ami-... it returns
InvalidAMIID.Malformed (EC2 API Reference: DescribeImageAttribute; Error codes for the Amazon
EC2 API).

moto 5.2.5: raises KeyError and returns HTTP 500 with an HTML page. DescribeSnapshotAttribute on
an unknown snapshot already returns InvalidSnapshot.NotFound with HTTP 400, so it needs no patch.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import InvalidAMIIdError, MalformedAMIIdError
from moto.ec2.models.amis import AmiBackend

NAME = "image-attribute-not-found"


def apply() -> None:
    AmiBackend.describe_image_attribute = _wrap(AmiBackend.describe_image_attribute)


def _wrap(moto_method: Any) -> Any:
    def describe_image_attribute(self: AmiBackend, ami_id: str, attribute_name: str) -> Any:
        if not str(ami_id).startswith("ami-"):
            raise MalformedAMIIdError([ami_id])
        if ami_id not in self.amis:
            raise InvalidAMIIdError(ami_id)
        return moto_method(self, ami_id, attribute_name)

    return describe_image_attribute
