"""Images and snapshots encrypted under an AWS managed key cannot be shared.

AWS: only snapshots under a customer managed key can be shared, so snapshots encrypted with the
AWS managed key aws/ebs cannot (EBS User Guide: Share an Amazon EBS snapshot). Adding a launch
permission to an image backed by such a snapshot fails with InvalidParameter "Snapshots
encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.", and adding a
createVolumePermission to such a snapshot fails with OperationNotPermitted "Encrypted snapshots
with EBS default key cannot be shared" (error texts as EC2 returned them to the stratus-red-team
and Packer projects).

moto 5.2.5: shares them like any other image or snapshot.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

from . import _resources

NAME = "aws-managed-key-sharing"

IMAGE_MESSAGE = (
    "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot."
)
SNAPSHOT_MESSAGE = "Encrypted snapshots with EBS default key cannot be shared"


def apply() -> None:
    AmisResponse.modify_image_attribute = _check_image(AmisResponse.modify_image_attribute)
    ElasticBlockStore.modify_snapshot_attribute = _check_snapshot(
        ElasticBlockStore.modify_snapshot_attribute
    )


def _under_aws_managed_key(snapshot: Any) -> bool:
    if not snapshot.encrypted:
        return False
    backend = snapshot.ec2_backend
    return _resources.is_aws_managed_key(
        snapshot.kms_key_id, backend.account_id, backend.region_name
    )


def _adds_permissions(response: Any, structure: str) -> bool:
    requested = response._get_param(structure, {}) or {}
    return bool(requested.get("Add")) or response._get_param("OperationType") == "add"


def _check_image(moto_method: Any) -> Any:
    def modify_image_attribute(self: AmisResponse) -> Any:
        image = self.ec2_backend.amis.get(self._get_param("ImageId"))
        if image is not None and _adds_permissions(self, "LaunchPermission"):
            if any(_under_aws_managed_key(s) for s in _resources.image_snapshots(image)):
                raise EC2ClientError("InvalidParameter", IMAGE_MESSAGE)
        return moto_method(self)

    return modify_image_attribute


def _check_snapshot(moto_method: Any) -> Any:
    def modify_snapshot_attribute(self: ElasticBlockStore) -> Any:
        snapshot = self.ec2_backend.snapshots.get(self._get_param("SnapshotId"))
        if snapshot is not None and _adds_permissions(self, "CreateVolumePermission"):
            if _under_aws_managed_key(snapshot):
                raise EC2ClientError("OperationNotPermitted", SNAPSHOT_MESSAGE)
        return moto_method(self)

    return modify_snapshot_attribute
