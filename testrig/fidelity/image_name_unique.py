"""An account cannot give two of its images in one region the same name.

AWS: RegisterImage, CreateImage and CopyImage fail with InvalidAMIName.Duplicate, "AMI name
NAME is already in use by AMI ami-ID", when an image of the caller in that region already has the
name. The name of a deregistered image is free again (EC2 API Reference: RegisterImage, Error
codes for the Amazon EC2 API).

moto 5.2.5: accepts any number of images with the same name.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.amis import AmiBackend

from . import _resources

NAME = "image-name-unique"


def apply() -> None:
    for method_name in ("register_image", "create_image", "copy_image"):
        setattr(AmiBackend, method_name, _reject_duplicate(getattr(AmiBackend, method_name)))


def _reject_duplicate(moto_method: Any) -> Any:
    def method(self: AmiBackend, *args: Any, **kwargs: Any) -> Any:
        name = _resources.bound_arguments(moto_method, (self, *args), kwargs).get("name")
        for image in list(self.amis.values()):
            if name and image.name == name and image.owner_id == self.account_id:
                raise EC2ClientError(
                    "InvalidAMIName.Duplicate",
                    f"AMI name {name} is already in use by AMI {image.id}",
                )
        return moto_method(self, *args, **kwargs)

    method.__name__ = moto_method.__name__
    return method
