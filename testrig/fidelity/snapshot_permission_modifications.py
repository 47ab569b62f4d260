"""ModifySnapshotAttribute applies CreateVolumePermission.Add.N and .Remove.N entries.

AWS: ModifySnapshotAttribute takes the createVolumePermission changes either as OperationType
with UserIds and GroupNames, or as CreateVolumePermission with Add and Remove lists of
{UserId} or {Group} entries, which is the form the AWS SDK for Rust sends for
CreateVolumePermissionModifications. DescribeSnapshotAttribute then lists every entry (EC2 API
Reference: ModifySnapshotAttribute, CreateVolumePermissionModifications).

moto 5.2.5: reads only the OperationType form, so a CreateVolumePermission request succeeds and
changes nothing.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import EmptyResult
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

NAME = "snapshot-permission-modifications"


def apply() -> None:
    ElasticBlockStore.modify_snapshot_attribute = _modify_snapshot_attribute


def _split(entries: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    user_ids = [entry["UserId"] for entry in entries if entry.get("UserId")]
    groups = [entry["Group"] for entry in entries if entry.get("Group")]
    return user_ids, groups


def _modify_snapshot_attribute(self: ElasticBlockStore) -> EmptyResult:
    snapshot_id = self._get_param("SnapshotId")
    operation_type = self._get_param("OperationType")
    requested = self._get_param("CreateVolumePermission", {}) or {}

    add_user_ids, add_groups = _split(requested.get("Add", []))
    remove_user_ids, remove_groups = _split(requested.get("Remove", []))
    if operation_type == "add":
        add_user_ids += self._get_param("UserIds", [])
        add_groups += self._get_param("GroupNames", [])
    elif operation_type == "remove":
        remove_user_ids += self._get_param("UserIds", [])
        remove_groups += self._get_param("GroupNames", [])

    self.error_on_dryrun()

    backend = self.ec2_backend
    backend.get_snapshot(snapshot_id)
    if add_user_ids or add_groups:
        backend.add_create_volume_permission(snapshot_id, user_ids=add_user_ids, groups=add_groups)
    if remove_user_ids or remove_groups:
        backend.remove_create_volume_permission(
            snapshot_id, user_ids=remove_user_ids, groups=remove_groups
        )
    return EmptyResult()
