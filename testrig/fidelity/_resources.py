"""Lookups across moto's per-account, per-region backends that several patches share.

moto keeps one backend object per service, account and region. AWS resources that cross those
lines (an image shared with another account, a key used by another account) have to be found by
searching the other backends, which is what these helpers do without creating backends as a side
effect.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from moto.ec2.models import ec2_backends
from moto.kms.models import Key, kms_backends


def bound_arguments(function: Callable[..., Any], args: tuple, kwargs: dict) -> dict[str, Any]:
    """Map a call's positional and keyword arguments to the parameter names of `function`."""
    bound = inspect.signature(function).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def existing_backends(backend_dict: Any, region: str) -> Iterator[tuple[str, Any]]:
    """Yield (account id, backend) for every account that already has a backend in `region`.

    Indexing a moto BackendDict creates the backend, so this reads the plain dicts instead.
    """
    for account_id, account_backends in list(dict.items(backend_dict)):
        backend = dict.get(account_backends, region)
        if backend is not None:
            yield account_id, backend


def ec2_backend(account_id: str, region: str) -> Any:
    return ec2_backends[account_id][region]


def parse_kms_arn(reference: str) -> tuple[str, str, str] | None:
    """Split `arn:PARTITION:kms:REGION:ACCOUNT:RESOURCE` into (region, account, resource)."""
    parts = reference.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "kms":
        return None
    return parts[3], parts[4], parts[5]


def find_key(reference: str | None, account_id: str, region: str) -> Key | None:
    """Resolve a key id, alias, key ARN or alias ARN as `account_id` in `region` would.

    An ARN names its own account and region, so a key of another account is found in that
    account's backend. Looking up the reserved alias `alias/aws/ebs` creates the AWS managed key
    when it does not exist yet, as KMS does on first use.
    """
    if not reference:
        return None
    arn = parse_kms_arn(reference)
    if arn is not None:
        region, account_id, _resource = arn
    backend = kms_backends[account_id][region]
    try:
        key_id = backend.any_id_to_key_id(reference)
    except (KeyError, TypeError, AttributeError):
        return None
    return backend.keys.get(key_id)


def is_aws_managed_key(reference: str | None, account_id: str, region: str) -> bool:
    key = find_key(reference, account_id, region)
    if key is None:
        return False
    return key.key_manager == "AWS" or "alias/aws/ebs" in key.aliases


def default_ebs_key_arn(backend: Any) -> str:
    """Return the ARN of the key EBS uses for a request that sets Encrypted but names no key."""
    if backend.default_kms_key_id:
        return backend.default_kms_key_id
    return backend._create_default_encryption_key()


def can_launch(image: Any, account_id: str) -> bool:
    """Tell whether `account_id` owns the image or is granted launch permission on it.

    Organization and OU grants are not modelled, because moto does not know which organization an
    account belongs to.
    """
    if image.owner_id == account_id:
        return True
    permissions = image.launch_permissions
    return {"UserId": account_id} in permissions or {"Group": "all"} in permissions


def foreign_images(backend: Any) -> Iterator[Any]:
    """Yield the images of other accounts in the backend's region."""
    for account_id, other in existing_backends(ec2_backends, backend.region_name):
        if account_id != backend.account_id:
            yield from list(other.amis.values())


def image_snapshot_ids(image: Any) -> list[str]:
    snapshot_ids = []
    for mapping in image.block_device_mappings:
        snapshot_id = mapping.get("Ebs", {}).get("SnapshotId")
        if snapshot_id:
            snapshot_ids.append(snapshot_id)
    return snapshot_ids


def image_snapshots(image: Any) -> list[Any]:
    """Return the snapshot objects behind an image, looked up in the image owner's backend."""
    owner_backend = ec2_backend(image.owner_id, image.ec2_backend.region_name)
    return [
        owner_backend.snapshots[snapshot_id]
        for snapshot_id in image_snapshot_ids(image)
        if snapshot_id in owner_backend.snapshots
    ]


def set_block_device_mappings(image: Any, mappings: list[dict[str, Any]]) -> None:
    """Make `mappings` the image's block device mappings, in place of moto's made-up snapshot.

    moto creates one snapshot for every image it builds. That snapshot is removed here, because
    no AWS image would have it.
    """
    install_mapping_override()
    backend = image.ec2_backend
    backend.snapshots.pop(image.ebs_snapshot.id, None)
    image._rig_block_device_mappings = mappings
    for mapping in mappings:
        snapshot_id = mapping.get("Ebs", {}).get("SnapshotId")
        snapshot = backend.snapshots.get(snapshot_id) if snapshot_id else None
        if snapshot is None:
            continue
        if image.ebs_snapshot.id not in backend.snapshots:
            image.ebs_snapshot = snapshot
        # AWS refuses DeleteSnapshot for a snapshot an image is made of (InvalidSnapshot.InUse).
        if not snapshot.from_ami:
            snapshot.from_ami = image.id


def ebs_mapping(device_name: str, snapshot: Any, ebs: dict[str, Any] | None = None) -> dict:
    """Build one DescribeImages block device mapping for a snapshot-backed device."""
    ebs = ebs or {}
    return {
        "DeviceName": device_name,
        "Ebs": {
            "SnapshotId": snapshot.id,
            "VolumeSize": ebs.get("VolumeSize") or snapshot.volume_size,
            "VolumeType": ebs.get("VolumeType") or "gp2",
            "DeleteOnTermination": ebs.get("DeleteOnTermination", True),
            "Encrypted": bool(snapshot.encrypted),
        },
    }


_mapping_override_installed = False


def install_mapping_override() -> None:
    """Let images that carry `_rig_block_device_mappings` report them from DescribeImages."""
    global _mapping_override_installed
    if _mapping_override_installed:
        return
    from moto.ec2.models.amis import Ami

    moto_property = Ami.block_device_mappings

    def block_device_mappings(image: Any) -> list[dict[str, Any]]:
        mappings = getattr(image, "_rig_block_device_mappings", None)
        if mappings is None:
            return moto_property.fget(image)
        return mappings

    Ami.block_device_mappings = property(block_device_mappings)
    _mapping_override_installed = True
