"""CopyImage makes new snapshots under the requested key, across regions and accounts.

AWS (EC2 API Reference: CopyImage; EC2 User Guide: Copy an Amazon EC2 AMI):
- CopyImage is called in the destination region and names the source with SourceRegion.
- Every snapshot of the source is copied to a new snapshot of the caller. With Encrypted=true the
  copies are encrypted under KmsKeyId (key id, alias, key ARN or alias ARN, reported as the key
  ARN), or under the caller's default EBS key when no KmsKeyId is given. KmsKeyId without
  Encrypted=true is rejected. Without Encrypted, an encrypted snapshot stays encrypted: under the
  same key within the same account and region, else under the caller's default EBS key.
- An account may copy an image that another account shared with it. It also needs
  createVolumePermission on every snapshot of the image, or the call fails with InvalidRequest
  "You do not have permission to access the storage of this ami" (message as EC2 returns it).
- The copy starts in state pending and becomes available later. EC2 checks KmsKeyId only after
  the call returns, so a copy under a key that does not exist ends in state failed.
- The copy has neither the launch permissions nor the tags of the source, unless CopyImageTags
  is set. TagSpecifications tag the new image and snapshots, and a repeated ClientToken returns
  the image of the first call.

moto 5.2.5: ignores Encrypted, KmsKeyId, TagSpecifications, CopyImageTags and ClientToken, gives
the copy one new unencrypted snapshot, looks the source up only in the caller's own account, and
makes the copy available at once.

The time a copy stays pending is AMISHARE_RIG_COPY_PENDING_SECONDS (seconds, default 1).
"""

from __future__ import annotations

import os
import time
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import (
    EC2ClientError,
    InvalidAMIIdError,
    InvalidParameterDependency,
    MissingParameterError,
)
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.elastic_block_store import Snapshot
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.utils import random_ami_id, random_snapshot_id

from . import _resources

NAME = "copy-image"

PENDING_SECONDS_VARIABLE = "AMISHARE_RIG_COPY_PENDING_SECONDS"
STORAGE_MESSAGE = "You do not have permission to access the storage of this ami"

_pending_seconds = 1.0


def apply() -> None:
    global _pending_seconds
    _pending_seconds = pending_seconds_from_environment()
    _install_delayed_state(Ami, "state")
    _install_delayed_state(Snapshot, "status")
    AmisResponse.copy_image = _copy_image_response
    AmiBackend.copy_image = _copy_image


def pending_seconds_from_environment() -> float:
    text = os.environ.get(PENDING_SECONDS_VARIABLE, "1")
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ValueError(
            f"{PENDING_SECONDS_VARIABLE}={text!r} is invalid: expected a number of seconds >= 0"
        )
    return seconds


def _install_delayed_state(model: type, attribute: str) -> None:
    """Turn `attribute` into a property that may hold a value until a deadline passes.

    A copy stores its final value and a deadline; reads after the deadline see the final value.
    Plain assignments (moto's own code) clear any pending change.
    """
    stored = f"_rig_{attribute}"

    def read(resource: Any) -> Any:
        pending = resource.__dict__.get("_rig_pending")
        if pending is not None and time.monotonic() >= pending[0]:
            resource.__dict__[stored] = pending[1]
            resource.__dict__["_rig_pending"] = None
        return resource.__dict__.get(stored)

    def write(resource: Any, value: Any) -> None:
        resource.__dict__[stored] = value
        resource.__dict__["_rig_pending"] = None

    setattr(model, attribute, property(read, write))


def _finish_later(resource: Any, attribute: str, current: str, final: str) -> None:
    setattr(resource, attribute, current)
    resource.__dict__["_rig_pending"] = (time.monotonic() + _pending_seconds, final)


def _copy_image_response(self: AmisResponse) -> ActionResult:
    source_image_id = self._get_param("SourceImageId")
    source_region = self._get_param("SourceRegion")
    encrypted = self._get_bool_param("Encrypted", False)
    kms_key_id = self._get_param("KmsKeyId")
    client_token = self._get_param("ClientToken")

    self.error_on_dryrun()

    if not source_region:
        raise MissingParameterError("SourceRegion")
    if kms_key_id and not encrypted:
        raise InvalidParameterDependency("KmsKeyId", "Encrypted")

    backend = self.ec2_backend
    tokens = backend.__dict__.setdefault("_rig_copy_tokens", {})
    if client_token and client_token in tokens:
        return ActionResult({"ImageId": tokens[client_token]})

    image = backend.copy_image(
        source_image_id,
        source_region,
        name=self._get_param("Name"),
        description=self._get_param("Description"),
        encrypted=encrypted,
        kms_key_id=kms_key_id,
        copy_image_tags=self._get_bool_param("CopyImageTags", False),
        tags=self._parse_tag_specification(),
    )
    if client_token:
        tokens[client_token] = image.id
    return ActionResult({"ImageId": image.id})


def _find_source(backend: AmiBackend, image_id: str, region: str) -> Any:
    own = _resources.ec2_backend(backend.account_id, region).amis.get(image_id)
    if own is not None:
        return own
    for _account_id, other in _resources.existing_backends(ec2_backends, region):
        image = other.amis.get(image_id)
        if image is not None and _resources.can_launch(image, backend.account_id):
            return image
    raise InvalidAMIIdError(image_id)


def _require_storage_permission(image: Any, account_id: str) -> None:
    for snapshot in _resources.image_snapshots(image):
        user_ids = snapshot.create_volume_permission_userids
        groups = snapshot.create_volume_permission_groups
        if account_id not in user_ids and "all" not in groups:
            raise EC2ClientError("InvalidRequest", STORAGE_MESSAGE)


def _destination_key(
    backend: AmiBackend,
    source_snapshot: Any,
    encrypted: bool,
    kms_key_id: str | None,
    same_owner: bool,
) -> str | None:
    """Return the key reference the copy of `source_snapshot` is encrypted under, or None."""
    if encrypted:
        return kms_key_id or _resources.default_ebs_key_arn(backend)
    if not source_snapshot.encrypted:
        return None
    same_region = source_snapshot.ec2_backend.region_name == backend.region_name
    if same_owner and same_region and source_snapshot.kms_key_id:
        return source_snapshot.kms_key_id
    return _resources.default_ebs_key_arn(backend)


def _copy_snapshots(
    backend: AmiBackend,
    source: Any,
    image: Any,
    encrypted: bool,
    kms_key_id: str | None,
) -> tuple[list[dict], list[Any], str | None]:
    """Copy every snapshot of `source` for `image`; return (mappings, snapshots, missing key)."""
    same_owner = source.owner_id == backend.account_id
    source_backend = _resources.ec2_backend(source.owner_id, source.ec2_backend.region_name)
    mappings, snapshots, missing_key = [], [], None
    for mapping in source.block_device_mappings:
        ebs = mapping.get("Ebs") or {}
        source_snapshot = source_backend.snapshots.get(ebs.get("SnapshotId"))
        if source_snapshot is None:
            continue
        reference = _destination_key(backend, source_snapshot, encrypted, kms_key_id, same_owner)
        key_arn = None
        if reference is not None:
            key = _resources.find_key(reference, backend.account_id, backend.region_name)
            key_arn = key.arn if key is not None else reference
            if key is None:
                missing_key = reference
        snapshot = Snapshot(
            backend,
            random_snapshot_id(),
            volume=source_snapshot.volume,
            description=f"Copied for DestinationAmi {image.id} from SourceAmi {source.id} "
            f"for SourceSnapshot {source_snapshot.id}",
            encrypted=key_arn is not None,
            kms_key_id=key_arn,
            owner_id=backend.account_id,
            from_ami=image.id,
        )
        backend.snapshots[snapshot.id] = snapshot
        snapshots.append(snapshot)
        mappings.append(_resources.ebs_mapping(mapping["DeviceName"], snapshot, ebs))
    return mappings, snapshots, missing_key


def _copy_image(
    self: AmiBackend,
    source_image_id: str,
    source_region: str,
    name: str | None = None,
    description: str | None = None,
    encrypted: bool = False,
    kms_key_id: str | None = None,
    copy_image_tags: bool = False,
    tags: dict[str, dict[str, str]] | None = None,
) -> Any:
    source = _find_source(self, source_image_id, source_region)
    same_owner = source.owner_id == self.account_id
    if not same_owner:
        _require_storage_permission(source, self.account_id)

    image = Ami(self, random_ami_id(), source_ami=source, name=name, description=description)
    image.root_device_name = source.root_device_name
    image.root_device_type = source.root_device_type
    mappings, snapshots, missing_key = _copy_snapshots(self, source, image, encrypted, kms_key_id)
    if mappings:
        _resources.set_block_device_mappings(image, mappings)
    else:
        self.snapshots.pop(image.ebs_snapshot.id, None)

    if copy_image_tags and same_owner:
        source_tags = {tag["key"]: tag["value"] for tag in source.get_tags()}
        image.add_tags({k: v for k, v in source_tags.items() if not k.startswith("aws:")})
    tags = tags or {}
    image.add_tags(tags.get("image", {}))
    for snapshot in snapshots:
        snapshot.add_tags(tags.get("snapshot", {}))

    failed = missing_key is not None
    if failed:
        # NOTE: the code and message of this reason are the rig's own; EC2's are not known here.
        image.state_reason = {
            "Code": "Client.InvalidKMSKey.NotFound",
            "Message": f"The KMS key {missing_key} does not exist in {self.region_name}.",
        }
    _finish_later(image, "state", "pending", "failed" if failed else "available")
    for snapshot in snapshots:
        _finish_later(snapshot, "status", "pending", "error" if failed else "completed")
    self.amis[image.id] = image
    return image
