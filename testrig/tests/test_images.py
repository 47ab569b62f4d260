"""Images: RegisterImage, CreateImage, CopyImage, sharing visibility and attribute errors."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError
from conftest import OTHER_REGION, REGION, SOURCE_ACCOUNT, TARGET_ACCOUNT, Rig
from world import (
    image_of,
    image_snapshot_ids,
    make_encrypted_image,
    make_key,
    make_snapshot,
    register_image,
    snapshot_of,
    wait_for_image_state,
)


def error_code(error: pytest.ExceptionInfo) -> str:
    return error.value.response["Error"]["Code"]


def share_image(rig: Rig, image_id: str, snapshot_id: str | None, target: str) -> None:
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": target}]})
    if snapshot_id:
        ec2.modify_snapshot_attribute(
            SnapshotId=snapshot_id,
            Attribute="createVolumePermission",
            CreateVolumePermission={"Add": [{"UserId": target}]},
        )


# RegisterImage and CreateImage


def test_register_image_keeps_given_snapshot(rig: Rig) -> None:
    image_id, snapshot_id, key = make_encrypted_image(rig)
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)

    image = image_of(ec2, image_id)
    assert image_snapshot_ids(image) == [snapshot_id]
    assert image["RootDeviceName"] == "/dev/xvda"
    assert image["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    snapshot = snapshot_of(ec2, snapshot_id)
    assert snapshot["KmsKeyId"] == key["Arn"]
    # No extra snapshot made up for the image.
    assert len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 1


def test_register_image_unknown_snapshot(rig: Rig) -> None:
    with pytest.raises(ClientError) as error:
        register_image(rig, "snap-0123456789abcdef0")
    assert error_code(error) == "InvalidSnapshot.NotFound"


def test_register_image_gap_in_moto(moto_rig: Rig) -> None:
    image_id, snapshot_id, _key = make_encrypted_image(moto_rig)
    ec2 = moto_rig.client("ec2", SOURCE_ACCOUNT)
    image_snapshot = image_snapshot_ids(image_of(ec2, image_id))[0]
    assert image_snapshot != snapshot_id
    assert snapshot_of(ec2, image_snapshot)["Encrypted"] is False


def test_create_image_keeps_volume_encryption(rig: Rig) -> None:
    key = make_key(rig)
    base_image = register_image(rig, make_snapshot(rig), name="base")
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    instance = ec2.run_instances(
        ImageId=base_image,
        MinCount=1,
        MaxCount=1,
        BlockDeviceMappings=[
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {"VolumeSize": 10, "Encrypted": True, "KmsKeyId": key["KeyId"]},
            }
        ],
    )["Instances"][0]

    image_id = ec2.create_image(InstanceId=instance["InstanceId"], Name="from-instance")["ImageId"]
    image = image_of(ec2, image_id)
    [snapshot_id] = image_snapshot_ids(image)
    snapshot = snapshot_of(ec2, snapshot_id)
    assert snapshot["Encrypted"] is True
    assert snapshot["KmsKeyId"] == key["Arn"]
    assert snapshot["VolumeSize"] == 10
    assert image["RootDeviceName"] == "/dev/xvda"


def test_create_snapshot_keeps_key_arn(rig: Rig) -> None:
    key = make_key(rig, alias="alias/by-alias")
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    volume = ec2.create_volume(
        Size=8, AvailabilityZone="us-east-1a", Encrypted=True, KmsKeyId="alias/by-alias"
    )
    assert volume["KmsKeyId"] == key["Arn"]
    snapshot = snapshot_of(ec2, ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"])
    assert snapshot["KmsKeyId"] == key["Arn"]


def test_create_snapshot_gap_in_moto(moto_rig: Rig) -> None:
    key = make_key(moto_rig)
    ec2 = moto_rig.client("ec2", SOURCE_ACCOUNT)
    snapshot = snapshot_of(ec2, make_snapshot(moto_rig, key_id=key["KeyId"]))
    assert snapshot["Encrypted"] is True
    assert "KmsKeyId" not in snapshot


# CopyImage


def test_copy_image_under_given_key(rig: Rig) -> None:
    image_id, snapshot_id, _source_key = make_encrypted_image(rig)
    copy_key = make_key(rig, alias="alias/copy-key")
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)

    copy_id = ec2.copy_image(
        SourceImageId=image_id,
        SourceRegion=REGION,
        Name="copy",
        Encrypted=True,
        KmsKeyId="alias/copy-key",
    )["ImageId"]

    assert image_of(ec2, copy_id)["State"] == "pending"
    copy = wait_for_image_state(ec2, copy_id, "available")
    assert copy["State"] == "available"
    [copy_snapshot_id] = image_snapshot_ids(copy)
    assert copy_snapshot_id != snapshot_id
    copy_snapshot = snapshot_of(ec2, copy_snapshot_id)
    assert copy_snapshot["Encrypted"] is True
    assert copy_snapshot["KmsKeyId"] == copy_key["Arn"]
    assert copy_snapshot["State"] == "completed"


def test_copy_image_default_ebs_key(rig: Rig) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(rig)
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    ebs_key = rig.client("kms", SOURCE_ACCOUNT).describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]

    copy_id = ec2.copy_image(
        SourceImageId=image_id, SourceRegion=REGION, Name="copy", Encrypted=True
    )["ImageId"]

    [copy_snapshot_id] = image_snapshot_ids(image_of(ec2, copy_id))
    assert snapshot_of(ec2, copy_snapshot_id)["KmsKeyId"] == ebs_key["Arn"]


def test_copy_image_key_without_encrypted(rig: Rig) -> None:
    image_id, _snapshot_id, key = make_encrypted_image(rig)
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    with pytest.raises(ClientError) as error:
        ec2.copy_image(
            SourceImageId=image_id, SourceRegion=REGION, Name="copy", KmsKeyId=key["Arn"]
        )
    assert error_code(error) == "InvalidParameterDependency"


def test_copy_image_to_other_region(rig: Rig) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(rig)
    west_key = make_key(rig, region=OTHER_REGION)
    west = rig.client("ec2", SOURCE_ACCOUNT, OTHER_REGION)

    copy_id = west.copy_image(
        SourceImageId=image_id,
        SourceRegion=REGION,
        Name="copy-west",
        Encrypted=True,
        KmsKeyId=west_key["Arn"],
    )["ImageId"]

    copy = wait_for_image_state(west, copy_id, "available")
    assert copy["State"] == "available"
    [copy_snapshot_id] = image_snapshot_ids(copy)
    assert snapshot_of(west, copy_snapshot_id)["KmsKeyId"] == west_key["Arn"]
    east = rig.client("ec2", SOURCE_ACCOUNT, REGION)
    assert east.describe_images(Owners=["self"])["Images"][0]["ImageId"] == image_id
    assert len(east.describe_images(Owners=["self"])["Images"]) == 1


def test_copy_image_unencrypted_stays_unencrypted(rig: Rig) -> None:
    image_id = register_image(rig, make_snapshot(rig))
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    copy_id = ec2.copy_image(SourceImageId=image_id, SourceRegion=REGION, Name="copy")["ImageId"]
    [copy_snapshot_id] = image_snapshot_ids(image_of(ec2, copy_id))
    assert snapshot_of(ec2, copy_snapshot_id)["Encrypted"] is False


def test_copy_image_by_target_account(rig: Rig) -> None:
    image_id, snapshot_id, _key = make_encrypted_image(rig)
    share_image(rig, image_id, snapshot_id, TARGET_ACCOUNT)
    target_key = make_key(rig, account=TARGET_ACCOUNT)
    target = rig.client("ec2", TARGET_ACCOUNT)

    copy_id = target.copy_image(
        SourceImageId=image_id,
        SourceRegion=REGION,
        Name="target-copy",
        Encrypted=True,
        KmsKeyId=target_key["Arn"],
    )["ImageId"]

    copy = wait_for_image_state(target, copy_id, "available")
    assert copy["State"] == "available"
    assert copy["OwnerId"] == TARGET_ACCOUNT
    [copy_snapshot_id] = image_snapshot_ids(copy)
    copy_snapshot = snapshot_of(target, copy_snapshot_id)
    assert copy_snapshot["OwnerId"] == TARGET_ACCOUNT
    assert copy_snapshot["KmsKeyId"] == target_key["Arn"]


def test_copy_image_needs_volume_permission(rig: Rig) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(rig)
    share_image(rig, image_id, None, TARGET_ACCOUNT)
    target = rig.client("ec2", TARGET_ACCOUNT)

    with pytest.raises(ClientError) as error:
        target.copy_image(
            SourceImageId=image_id, SourceRegion=REGION, Name="target-copy", Encrypted=True
        )
    assert error_code(error) == "InvalidRequest"
    assert "permission to access the storage of this ami" in str(error.value)


def test_copy_image_not_shared(rig: Rig) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(rig)
    target = rig.client("ec2", TARGET_ACCOUNT)
    with pytest.raises(ClientError) as error:
        target.copy_image(SourceImageId=image_id, SourceRegion=REGION, Name="target-copy")
    assert error_code(error) == "InvalidAMIID.NotFound"


def test_copy_image_drops_permissions_and_tags(rig: Rig) -> None:
    image_id, snapshot_id, _key = make_encrypted_image(rig)
    share_image(rig, image_id, snapshot_id, TARGET_ACCOUNT)
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    ec2.create_tags(Resources=[image_id], Tags=[{"Key": "team", "Value": "images"}])

    copy_id = ec2.copy_image(
        SourceImageId=image_id,
        SourceRegion=REGION,
        Name="copy",
        Encrypted=True,
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "amishare:copy-of", "Value": image_id}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "amishare:copy-of", "Value": image_id}]},
        ],
    )["ImageId"]

    copy = image_of(ec2, copy_id)
    assert copy["Tags"] == [{"Key": "amishare:copy-of", "Value": image_id}]
    permissions = ec2.describe_image_attribute(ImageId=copy_id, Attribute="launchPermission")
    assert permissions["LaunchPermissions"] == []
    [copy_snapshot_id] = image_snapshot_ids(copy)
    assert snapshot_of(ec2, copy_snapshot_id)["Tags"] == [
        {"Key": "amishare:copy-of", "Value": image_id}
    ]


def test_copy_image_client_token_idempotent(rig: Rig) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(rig)
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    arguments = {
        "SourceImageId": image_id,
        "SourceRegion": REGION,
        "Name": "copy",
        "Encrypted": True,
        "ClientToken": "copy-once",
    }
    first = ec2.copy_image(**arguments)["ImageId"]
    second = ec2.copy_image(**arguments)["ImageId"]
    assert first == second
    assert len(ec2.describe_images(Owners=["self"])["Images"]) == 2


def test_copy_image_unknown_key_fails_later(rig: Rig) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(rig)
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    copy_id = ec2.copy_image(
        SourceImageId=image_id,
        SourceRegion=REGION,
        Name="copy",
        Encrypted=True,
        KmsKeyId="alias/does-not-exist",
    )["ImageId"]
    assert image_of(ec2, copy_id)["State"] == "pending"
    assert wait_for_image_state(ec2, copy_id, "failed")["State"] == "failed"


def test_copy_image_gap_in_moto(moto_rig: Rig) -> None:
    image_id, _snapshot_id, key = make_encrypted_image(moto_rig)
    ec2 = moto_rig.client("ec2", SOURCE_ACCOUNT)
    copy_id = ec2.copy_image(
        SourceImageId=image_id,
        SourceRegion=REGION,
        Name="copy",
        Encrypted=True,
        KmsKeyId=key["Arn"],
    )["ImageId"]
    copy = image_of(ec2, copy_id)
    assert copy["State"] == "available"
    [copy_snapshot_id] = image_snapshot_ids(copy)
    assert snapshot_of(ec2, copy_snapshot_id)["Encrypted"] is False
    # KmsKeyId without Encrypted is accepted.
    ec2.copy_image(SourceImageId=image_id, SourceRegion=REGION, Name="copy2", KmsKeyId=key["Arn"])


def test_copy_image_by_target_gap_in_moto(moto_rig: Rig) -> None:
    image_id, snapshot_id, _key = make_encrypted_image(moto_rig)
    share_image(moto_rig, image_id, None, TARGET_ACCOUNT)
    target = moto_rig.client("ec2", TARGET_ACCOUNT)
    with pytest.raises(ClientError) as error:
        target.copy_image(SourceImageId=image_id, SourceRegion=REGION, Name="target-copy")
    assert error_code(error) == "InvalidAMIID.NotFound"


def test_copy_pending_seconds_rejects_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from fidelity import copy_image

    monkeypatch.setenv(copy_image.PENDING_SECONDS_VARIABLE, "soon")
    with pytest.raises(ValueError, match="AMISHARE_RIG_COPY_PENDING_SECONDS"):
        copy_image.pending_seconds_from_environment()
    monkeypatch.setenv(copy_image.PENDING_SECONDS_VARIABLE, "2.5")
    assert copy_image.pending_seconds_from_environment() == 2.5


# Visibility of shared images


def test_shared_image_visible_to_target(rig: Rig) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(rig)
    hidden_id, _hidden_snapshot, _hidden_key = make_encrypted_image(rig, name="not-shared")
    share_image(rig, image_id, None, TARGET_ACCOUNT)
    target = rig.client("ec2", TARGET_ACCOUNT)

    assert image_of(target, image_id)["OwnerId"] == SOURCE_ACCOUNT
    shared = target.describe_images(ExecutableUsers=["self"])["Images"]
    assert [image["ImageId"] for image in shared] == [image_id]
    by_owner = target.describe_images(Owners=[SOURCE_ACCOUNT])["Images"]
    assert [image["ImageId"] for image in by_owner] == [image_id]
    assert target.describe_images(Owners=["self"])["Images"] == []
    with pytest.raises(ClientError) as error:
        target.describe_images(ImageIds=[hidden_id])
    assert error_code(error) == "InvalidAMIID.NotFound"


def test_shared_image_not_modifiable_by_target(rig: Rig) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(rig)
    share_image(rig, image_id, None, TARGET_ACCOUNT)
    target = rig.client("ec2", TARGET_ACCOUNT)
    with pytest.raises(ClientError) as error:
        target.modify_image_attribute(
            ImageId=image_id, LaunchPermission={"Add": [{"UserId": "333333333333"}]}
        )
    assert error_code(error) == "InvalidAMIID.NotFound"


def test_shared_image_gap_in_moto(moto_rig: Rig) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(moto_rig)
    share_image(moto_rig, image_id, None, TARGET_ACCOUNT)
    target = moto_rig.client("ec2", TARGET_ACCOUNT)
    with pytest.raises(ClientError) as error:
        target.describe_images(ImageIds=[image_id])
    assert error_code(error) == "InvalidAMIID.NotFound"
    assert target.describe_images(ExecutableUsers=["self"])["Images"] == []


# Attribute errors and names


def test_image_attribute_unknown_image(rig: Rig) -> None:
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    with pytest.raises(ClientError) as error:
        ec2.describe_image_attribute(ImageId="ami-0123456789abcdef0", Attribute="launchPermission")
    assert error_code(error) == "InvalidAMIID.NotFound"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_image_attribute_gap_in_moto(moto_rig: Rig) -> None:
    ec2 = moto_rig.client("ec2", SOURCE_ACCOUNT)
    with pytest.raises((ClientError, ResponseParserError)) as error:
        ec2.describe_image_attribute(ImageId="ami-0123456789abcdef0", Attribute="launchPermission")
    assert "500" in str(error.value) or "Internal Server Error" in str(error.value)


@pytest.mark.parametrize("rig_name", ["rig", "moto_rig"])
def test_snapshot_attribute_unknown_snapshot(rig_name: str, request: pytest.FixtureRequest) -> None:
    ec2 = request.getfixturevalue(rig_name).client("ec2", SOURCE_ACCOUNT)
    with pytest.raises(ClientError) as error:
        ec2.describe_snapshot_attribute(
            SnapshotId="snap-0123456789abcdef0", Attribute="createVolumePermission"
        )
    assert error_code(error) == "InvalidSnapshot.NotFound"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_image_name_unique_per_account(rig: Rig) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(rig, name="golden")
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    with pytest.raises(ClientError) as error:
        register_image(rig, make_snapshot(rig), name="golden")
    assert error_code(error) == "InvalidAMIName.Duplicate"
    with pytest.raises(ClientError) as error:
        ec2.copy_image(SourceImageId=image_id, SourceRegion=REGION, Name="golden")
    assert error_code(error) == "InvalidAMIName.Duplicate"

    # Another account, or the same name after deregistering, is fine.
    register_image(rig, make_snapshot(rig, account=TARGET_ACCOUNT), TARGET_ACCOUNT, name="golden")
    ec2.deregister_image(ImageId=image_id)
    register_image(rig, make_snapshot(rig), name="golden")


def test_image_name_gap_in_moto(moto_rig: Rig) -> None:
    register_image(moto_rig, make_snapshot(moto_rig), name="golden")
    register_image(moto_rig, make_snapshot(moto_rig), name="golden")


def test_copy_image_under_target_key(rig: Rig) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(rig)
    target_key = make_key(rig, account=TARGET_ACCOUNT)
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)

    copy_id = ec2.copy_image(
        SourceImageId=image_id,
        SourceRegion=REGION,
        Name="copy-for-target",
        Encrypted=True,
        KmsKeyId=target_key["Arn"],
    )["ImageId"]

    copy = wait_for_image_state(ec2, copy_id, "available")
    assert copy["State"] == "available"
    assert copy["OwnerId"] == SOURCE_ACCOUNT
    [copy_snapshot_id] = image_snapshot_ids(copy)
    assert snapshot_of(ec2, copy_snapshot_id)["KmsKeyId"] == target_key["Arn"]


def test_copy_image_failed_reason(rig: Rig) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(rig)
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    copy_id = ec2.copy_image(
        SourceImageId=image_id,
        SourceRegion=REGION,
        Name="copy",
        Encrypted=True,
        KmsKeyId="arn:aws:kms:us-west-2:111111111111:key/0d7d0d6c-0000-4000-8000-000000000000",
    )["ImageId"]
    copy = wait_for_image_state(ec2, copy_id, "failed")
    assert copy["State"] == "failed"
    assert "does not exist" in copy["StateReason"]["Message"]
