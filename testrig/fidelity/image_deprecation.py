"""EnableImageDeprecation and DisableImageDeprecation set and clear an image's DeprecationTime.

AWS (EC2 API Reference: EnableImageDeprecation, DisableImageDeprecation and DescribeImages, as
the botocore 1.44.8 service model documents them; EC2 User Guide: Deprecate an AMI):
- EnableImageDeprecation(ImageId, DeprecateAt) returns Return=true. EC2 rounds DeprecateAt to the
  nearest minute. DeprecateAt cannot be in the past, and may be at most 10 years from now, or for
  a public image at most 2 years from its creation date.
- DisableImageDeprecation(ImageId) cancels the deprecation and returns Return=true.
- DescribeImages reports DeprecationTime in UTC. Once that time has passed, the owner still sees
  the image, but other accounts see it only when they pass IncludeDeprecated=true or name it in
  ImageIds.

moto 5.2.5: implements neither action, so both fail with HTTP 500 and an HTML page, and
DescribeImages ignores IncludeDeprecated.

This patch differs from EC2 on purpose in one way: it accepts a DeprecateAt in the past, so that
tests can create an image that is already deprecated. Only the owner can deprecate or
undeprecate an image, and other accounts get InvalidAMIID.NotFound, as for ModifyImageAttribute
in the shared-image-visibility patch. DeprecationTime has milliseconds, like CreationDate
(2024-01-01T00:00:00.000Z), although the API Reference gives the form YYYY-MM-DDTHH:MM:SSZ.

NOTE: EC2 gives every public image a deprecation time 2 years after its creation by default
(EC2 User Guide: Deprecate an AMI). This patch does not, so a public image has no DeprecationTime
until EnableImageDeprecation sets one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.exceptions import (
    InvalidAMIIdError,
    InvalidParameterValue,
    MalformedAMIIdError,
    MissingParameterError,
    UnvailableAMIIdError,
)
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.utils import format_timestamp

NAME = "image-deprecation"

MAX_YEARS_AHEAD = 10
MAX_YEARS_AFTER_CREATION_IF_PUBLIC = 2


def apply() -> None:
    # moto serializes the `deprecation_time` attribute as DescribeImages' DeprecationTime.
    Ami.deprecation_time = property(_deprecation_time)
    AmiBackend.enable_image_deprecation = _enable_image_deprecation
    AmiBackend.disable_image_deprecation = _disable_image_deprecation
    AmisResponse.enable_image_deprecation = _enable_image_deprecation_response
    AmisResponse.disable_image_deprecation = _disable_image_deprecation_response
    AmisResponse.describe_images = _hide_deprecated(AmisResponse.describe_images)


def _deprecation_time(image: Ami) -> str | None:
    deprecate_at = getattr(image, "_rig_deprecate_at", None)
    if deprecate_at is None:
        return None
    return format_timestamp(deprecate_at)


def is_deprecated(image: Ami, now: datetime) -> bool:
    """Tell whether the image's deprecation time is set and not later than `now` (naive UTC)."""
    deprecate_at = getattr(image, "_rig_deprecate_at", None)
    return deprecate_at is not None and deprecate_at <= now


def round_to_minute(moment: datetime) -> datetime:
    """Round to the nearest minute, with 30 seconds and more rounding up."""
    # NOTE: the EC2 API Reference states only that EC2 "rounds the seconds to the nearest
    # minute", so how it rounds exactly 30 seconds is assumed.
    return (moment + timedelta(seconds=30)).replace(second=0, microsecond=0)


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        # 29 February in a year that is not a leap year.
        return moment.replace(year=moment.year + years, day=28)


def _owned_image(backend: AmiBackend, ami_id: str) -> Ami:
    if not str(ami_id).startswith("ami-"):
        raise MalformedAMIIdError([ami_id])
    if ami_id in backend.deleted_amis:
        raise UnvailableAMIIdError(ami_id)
    if ami_id not in backend.amis:
        raise InvalidAMIIdError(ami_id)
    return backend.amis[ami_id]


def _enable_image_deprecation(self: AmiBackend, ami_id: str, deprecate_at: datetime) -> None:
    image = _owned_image(self, ami_id)
    deprecate_at = round_to_minute(deprecate_at)
    now = utcnow()
    latest = _add_years(now, MAX_YEARS_AHEAD)
    if image.is_public:
        latest = min(latest, _add_years(image.creation_date, MAX_YEARS_AFTER_CREATION_IF_PUBLIC))
    # A time in the past is accepted, which EC2 rejects, because tests need deprecated images.
    # NOTE: the error code and message for a time beyond the upper limit are assumed.
    if deprecate_at > latest:
        raise InvalidParameterValue(
            f"Value ({format_timestamp(deprecate_at)}) for parameter DeprecateAt is invalid: "
            f"expected a time no later than {format_timestamp(latest)}"
        )
    image._rig_deprecate_at = deprecate_at


def _disable_image_deprecation(self: AmiBackend, ami_id: str) -> None:
    image = _owned_image(self, ami_id)
    image._rig_deprecate_at = None


def _enable_image_deprecation_response(self: AmisResponse) -> ActionResult:
    ami_id = self._get_param("ImageId")
    # moto's request parser has already turned DeprecateAt into a naive UTC datetime. It fails
    # with HTTP 500 before this handler runs when the value is not a timestamp.
    deprecate_at = self._get_param("DeprecateAt")
    if ami_id is None:
        raise MissingParameterError("ImageId")
    if deprecate_at is None:
        raise MissingParameterError("DeprecateAt")

    self.error_on_dryrun()

    self.ec2_backend.enable_image_deprecation(ami_id, deprecate_at)
    return ActionResult({"Return": True})


def _disable_image_deprecation_response(self: AmisResponse) -> ActionResult:
    ami_id = self._get_param("ImageId")
    if ami_id is None:
        raise MissingParameterError("ImageId")

    self.error_on_dryrun()

    self.ec2_backend.disable_image_deprecation(ami_id)
    return ActionResult({"Return": True})


def _hide_deprecated(moto_method: Any) -> Any:
    """Wrap DescribeImages to hide other accounts' deprecated images.

    They stay in the result when the request sets IncludeDeprecated=true or ImageIds.
    """

    def describe_images(self: AmisResponse) -> ActionResult:
        result = moto_method(self)
        if self._get_bool_param("IncludeDeprecated", False) or self._get_param("ImageIds"):
            return result

        caller = self.current_account
        now = utcnow()
        images = [
            image
            for image in result.result["Images"]
            if image.owner_id == caller or not is_deprecated(image, now)
        ]
        return ActionResult({**result.result, "Images": images})

    describe_images.__name__ = moto_method.__name__
    return describe_images
