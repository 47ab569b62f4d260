"""Launch permissions of images and create-volume permissions of snapshots."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from conftest import REGION, SOURCE_ACCOUNT, Rig
from world import image_of, make_encrypted_image, make_snapshot, register_image

ORGANIZATION = "arn:aws:organizations::111111111111:organization/o-abcdefghij"
OTHER_ORGANIZATION = "arn:aws:organizations::111111111111:organization/o-klmnopqrst"
OU = "arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-abcdefgh"
OTHER_OU = "arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-ijklmnop"

EVERY_KIND = [
    {"UserId": "333333333333"},
    {"UserId": "444444444444"},
    {"Group": "all"},
    {"OrganizationArn": ORGANIZATION},
    {"OrganizationArn": OTHER_ORGANIZATION},
    {"OrganizationalUnitArn": OU},
    {"OrganizationalUnitArn": OTHER_OU},
]


def sort_key(entry: dict) -> tuple:
    return tuple(sorted(entry.items()))


def launch_permissions(ec2, image_id: str) -> list[dict]:
    result = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    return sorted(result["LaunchPermissions"], key=sort_key)


def volume_permissions(ec2, snapshot_id: str) -> list[dict]:
    result = ec2.describe_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission"
    )
    return sorted(result["CreateVolumePermissions"], key=sort_key)


def test_launch_permission_add_remove_every_kind(rig: Rig) -> None:
    image_id = register_image(rig, make_snapshot(rig))
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)

    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": EVERY_KIND})
    assert launch_permissions(ec2, image_id) == sorted(EVERY_KIND, key=sort_key)

    removed = [EVERY_KIND[0], EVERY_KIND[2], EVERY_KIND[3], EVERY_KIND[6]]
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": removed})
    remaining = [entry for entry in EVERY_KIND if entry not in removed]
    assert launch_permissions(ec2, image_id) == sorted(remaining, key=sort_key)


def test_launch_permission_add_and_remove_together(rig: Rig) -> None:
    image_id = register_image(rig, make_snapshot(rig))
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": EVERY_KIND[:2]})

    ec2.modify_image_attribute(
        ImageId=image_id,
        LaunchPermission={"Add": [{"OrganizationArn": ORGANIZATION}], "Remove": EVERY_KIND[:1]},
    )
    assert launch_permissions(ec2, image_id) == sorted(
        [EVERY_KIND[1], {"OrganizationArn": ORGANIZATION}], key=sort_key
    )


def operation_type_arguments(operation: str) -> dict:
    return {
        "Attribute": "launchPermission",
        "OperationType": operation,
        "UserIds": ["333333333333", "444444444444"],
        "UserGroups": ["all"],
        "OrganizationArns": [ORGANIZATION, OTHER_ORGANIZATION],
        "OrganizationalUnitArns": [OU, OTHER_OU],
    }


def test_launch_permission_operation_type_form(rig: Rig) -> None:
    image_id = register_image(rig, make_snapshot(rig))
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)

    ec2.modify_image_attribute(ImageId=image_id, **operation_type_arguments("add"))
    assert launch_permissions(ec2, image_id) == sorted(EVERY_KIND, key=sort_key)

    ec2.modify_image_attribute(ImageId=image_id, **operation_type_arguments("remove"))
    assert launch_permissions(ec2, image_id) == []


def test_launch_permission_operation_type_gap_in_moto(moto_rig: Rig) -> None:
    image_id = register_image(moto_rig, make_snapshot(moto_rig))
    ec2 = moto_rig.client("ec2", SOURCE_ACCOUNT)
    ec2.modify_image_attribute(ImageId=image_id, **operation_type_arguments("add"))
    stored = launch_permissions(ec2, image_id)
    assert {"OrganizationArn": ORGANIZATION} in stored
    assert {"OrganizationArn": OTHER_ORGANIZATION} not in stored
    assert {"OrganizationalUnitArn": OTHER_OU} not in stored


@pytest.mark.parametrize(
    "entry",
    [
        {"OrganizationArn": "o-abcdefghij"},
        {"OrganizationArn": "arn:aws:iam::111111111111:root"},
        {"OrganizationArn": f"arn:aws:organizations::111111111111:account/o-abcdefghij/{'2' * 12}"},
        {"OrganizationalUnitArn": "ou-ab12-abcdefgh"},
        {"OrganizationalUnitArn": ORGANIZATION},
        {"UserId": "1234"},
        {"UserId": "arn:aws:iam::222222222222:root"},
        {"Group": "everyone"},
    ],
)
def test_launch_permission_rejects_malformed(rig: Rig, entry: dict) -> None:
    image_id = register_image(rig, make_snapshot(rig))
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    with pytest.raises(ClientError) as error:
        ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [entry]})
    assert error.value.response["Error"]["Code"] == "InvalidAMIAttributeItemValue"
    assert launch_permissions(ec2, image_id) == []


def test_launch_permission_malformed_gap_in_moto(moto_rig: Rig) -> None:
    image_id = register_image(moto_rig, make_snapshot(moto_rig))
    ec2 = moto_rig.client("ec2", SOURCE_ACCOUNT)
    entry = {"OrganizationArn": "o-abcdefghij"}
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [entry]})
    assert launch_permissions(ec2, image_id) == [entry]


def test_volume_permission_add_remove_form(rig: Rig) -> None:
    snapshot_id = make_snapshot(rig)
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    users = [{"UserId": "222222222222"}, {"UserId": "333333333333"}, {"UserId": "444444444444"}]

    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id,
        Attribute="createVolumePermission",
        CreateVolumePermission={"Add": users},
    )
    assert volume_permissions(ec2, snapshot_id) == users

    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id,
        Attribute="createVolumePermission",
        CreateVolumePermission={"Remove": users[:2]},
    )
    assert volume_permissions(ec2, snapshot_id) == users[2:]


def test_volume_permission_operation_type_form(rig: Rig) -> None:
    snapshot_id = make_snapshot(rig)
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id,
        Attribute="createVolumePermission",
        OperationType="add",
        UserIds=["222222222222", "333333333333"],
    )
    assert volume_permissions(ec2, snapshot_id) == [
        {"UserId": "222222222222"},
        {"UserId": "333333333333"},
    ]


def test_volume_permission_unknown_snapshot(rig: Rig) -> None:
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    with pytest.raises(ClientError) as error:
        ec2.modify_snapshot_attribute(
            SnapshotId="snap-0123456789abcdef0",
            Attribute="createVolumePermission",
            CreateVolumePermission={"Add": [{"UserId": "222222222222"}]},
        )
    assert error.value.response["Error"]["Code"] == "InvalidSnapshot.NotFound"


def test_volume_permission_gap_in_moto(moto_rig: Rig) -> None:
    snapshot_id = make_snapshot(moto_rig)
    ec2 = moto_rig.client("ec2", SOURCE_ACCOUNT)
    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id,
        Attribute="createVolumePermission",
        CreateVolumePermission={"Add": [{"UserId": "222222222222"}]},
    )
    assert volume_permissions(ec2, snapshot_id) == []


def aws_managed_image(rig: Rig) -> tuple[str, str]:
    """Return (image id, snapshot id) of an image under the account's aws/ebs key."""
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    volume = ec2.create_volume(Size=8, AvailabilityZone=f"{REGION}a", Encrypted=True)
    snapshot_id = ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]
    return register_image(rig, snapshot_id, name="aws-managed"), snapshot_id


def test_aws_managed_key_blocks_sharing(rig: Rig) -> None:
    image_id, snapshot_id = aws_managed_image(rig)
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)

    with pytest.raises(ClientError) as error:
        ec2.modify_image_attribute(
            ImageId=image_id, LaunchPermission={"Add": [{"UserId": "222222222222"}]}
        )
    assert error.value.response["Error"]["Code"] == "InvalidParameter"
    assert "AWS Managed CMK can't be shared" in str(error.value)

    with pytest.raises(ClientError) as error:
        ec2.modify_snapshot_attribute(
            SnapshotId=snapshot_id,
            Attribute="createVolumePermission",
            OperationType="add",
            UserIds=["222222222222"],
        )
    assert error.value.response["Error"]["Code"] == "OperationNotPermitted"
    assert launch_permissions(ec2, image_id) == []
    assert volume_permissions(ec2, snapshot_id) == []


def test_customer_key_allows_sharing(rig: Rig) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(rig)
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)
    ec2.modify_image_attribute(
        ImageId=image_id, LaunchPermission={"Add": [{"UserId": "222222222222"}]}
    )
    assert launch_permissions(ec2, image_id) == [{"UserId": "222222222222"}]
    assert image_of(ec2, image_id)["Public"] is False


def test_aws_managed_key_sharing_gap_in_moto(moto_rig: Rig) -> None:
    image_id, _snapshot_id = aws_managed_image(moto_rig)
    ec2 = moto_rig.client("ec2", SOURCE_ACCOUNT)
    ec2.modify_image_attribute(
        ImageId=image_id, LaunchPermission={"Add": [{"UserId": "222222222222"}]}
    )
    assert launch_permissions(ec2, image_id) == [{"UserId": "222222222222"}]
