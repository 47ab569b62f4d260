"""Volumes and snapshots report the full ARN of the key they are encrypted under.

AWS: CreateVolume accepts the key as key id, alias, key ARN or alias ARN and reports KmsKeyId as
the key ARN. A volume restored from an encrypted snapshot without KmsKeyId stays under the
snapshot's key, and CreateSnapshot of an encrypted volume encrypts the snapshot under the
volume's key (EC2 API Reference: CreateVolume, CreateSnapshot, Volume, Snapshot).

moto 5.2.5: keeps KmsKeyId exactly as given, leaves it empty for a volume restored from an
encrypted snapshot, and CreateSnapshot reports Encrypted without any KmsKeyId.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models.elastic_block_store import EBSBackend

from . import _resources

NAME = "ebs-volume-encryption"


def apply() -> None:
    EBSBackend.create_volume = _wrap_create_volume(EBSBackend.create_volume)
    EBSBackend.create_snapshot = _wrap_create_snapshot(EBSBackend.create_snapshot)


def _wrap_create_volume(moto_create_volume: Any) -> Any:
    def create_volume(self: EBSBackend, *args: Any, **kwargs: Any) -> Any:
        arguments = _resources.bound_arguments(moto_create_volume, (self, *args), kwargs)
        volume = moto_create_volume(self, *args, **kwargs)
        if arguments["snapshot_id"] and not arguments["kms_key_id"]:
            snapshot = self.get_snapshot(arguments["snapshot_id"])
            if snapshot.encrypted:
                volume.kms_key_id = snapshot.kms_key_id
        if volume.kms_key_id:
            key = _resources.find_key(volume.kms_key_id, self.account_id, self.region_name)
            # NOTE: EC2 checks KmsKeyId only after CreateVolume returns, and a volume under a
            # missing key ends in state error. Here it keeps the reference as given.
            if key is not None:
                volume.kms_key_id = key.arn
        return volume

    return create_volume


def _wrap_create_snapshot(moto_create_snapshot: Any) -> Any:
    def create_snapshot(self: EBSBackend, *args: Any, **kwargs: Any) -> Any:
        snapshot = moto_create_snapshot(self, *args, **kwargs)
        if snapshot.volume.encrypted:
            snapshot.kms_key_id = snapshot.volume.kms_key_id
        return snapshot

    return create_snapshot
