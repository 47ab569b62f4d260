"""RegisterImage and CreateImage build the image from the snapshots and volumes they are given.

AWS: RegisterImage makes an image of the snapshots named in BlockDeviceMappings, so the image's
snapshots are those snapshots, with their encryption and KMS key, and RootDeviceName names the
root device (EC2 API Reference: RegisterImage). CreateImage snapshots every EBS volume of the
instance, and the snapshot of an encrypted volume is encrypted under the volume's key (EC2 API
Reference: CreateImage, CreateSnapshot).

moto 5.2.5: both ignore that input and give every image one new, unencrypted 15 GiB snapshot on
/dev/sda1.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models.amis import AmiBackend
from moto.ec2.responses.amis import AmisResponse

from . import _resources

NAME = "image-snapshots"


def apply() -> None:
    AmisResponse.register_image = _register_image
    AmiBackend.create_image = _wrap_create_image(AmiBackend.create_image)


def _register_image(self: AmisResponse) -> ActionResult:
    name = self._get_param("Name")
    description = self._get_param("Description", "")
    requested_mappings = self._get_param("BlockDeviceMappings", [])
    root_device_name = self._get_param("RootDeviceName")

    self.error_on_dryrun()

    backend = self.ec2_backend
    mappings = []
    for requested in requested_mappings:
        ebs = requested.get("Ebs") or {}
        snapshot_id = ebs.get("SnapshotId")
        if snapshot_id:
            # Raises InvalidSnapshot.NotFound before anything is created, as EC2 does.
            snapshot = backend.get_snapshot(snapshot_id)
            mappings.append(_resources.ebs_mapping(requested["DeviceName"], snapshot, ebs))
        elif requested.get("VirtualName"):
            mappings.append(
                {"DeviceName": requested["DeviceName"], "VirtualName": requested["VirtualName"]}
            )

    image = backend.register_image(name=name, description=description)
    for attribute, parameter in [
        ("architecture", "Architecture"),
        ("virtualization_type", "VirtualizationType"),
        ("boot_mode", "BootMode"),
    ]:
        value = self._get_param(parameter)
        if value:
            setattr(image, attribute, value)
    if mappings:
        image.root_device_type = "ebs"
        image.root_device_name = root_device_name or mappings[0]["DeviceName"]
        _resources.set_block_device_mappings(image, mappings)
    return ActionResult({"ImageId": image.id})


def _wrap_create_image(moto_create_image: Any) -> Any:
    def create_image(self: AmiBackend, *args: Any, **kwargs: Any) -> Any:
        arguments = _resources.bound_arguments(moto_create_image, (self, *args), kwargs)
        image = moto_create_image(self, *args, **kwargs)
        instance = self.get_instance(arguments["instance_id"])

        mappings = []
        for device_name, device in instance.get_block_device_mapping:
            volume = self.get_volume(device.volume_id)
            snapshot = self.create_snapshot(
                volume.id,
                f"Created by CreateImage({instance.id}) for {image.id}",
                from_ami=image.id,
            )
            # moto's CreateSnapshot keeps Encrypted but drops the key.
            snapshot.kms_key_id = volume.kms_key_id if volume.encrypted else None
            ebs = {
                "VolumeSize": volume.size,
                "VolumeType": volume.volume_type,
                "DeleteOnTermination": device.delete_on_termination,
            }
            mappings.append(_resources.ebs_mapping(device_name, snapshot, ebs))

        if mappings:
            image.root_device_type = "ebs"
            image.root_device_name = instance.root_device_name
            _resources.set_block_device_mappings(image, mappings)
        return image

    return create_image
