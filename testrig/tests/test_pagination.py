"""DescribeImages and DescribeSnapshots in pages of AMISHARE_RIG_PAGE_SIZE items."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import SERVER, SOURCE_ACCOUNT, TARGET_ACCOUNT, Rig, start_server, stop_server
from world import make_snapshot, register_image

PAGE_SIZE = 2
ITEM_COUNT = 5
PAGE_SIZE_VARIABLE = "AMISHARE_RIG_PAGE_SIZE"


@pytest.fixture(scope="module")
def paging_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    rig = start_server(
        tmp_path_factory.mktemp("paging"), environment={PAGE_SIZE_VARIABLE: str(PAGE_SIZE)}
    )
    yield rig
    stop_server(rig)


@pytest.fixture(scope="module")
def unpaged_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server with the page size set but the patch disabled."""
    rig = start_server(
        tmp_path_factory.mktemp("unpaged"),
        "--without",
        "pagination",
        environment={PAGE_SIZE_VARIABLE: str(PAGE_SIZE)},
    )
    yield rig
    stop_server(rig)


@pytest.fixture
def paging_rig(paging_server: Rig) -> Rig:
    paging_server.reset()
    return paging_server


@pytest.fixture
def unpaged_rig(unpaged_server: Rig) -> Rig:
    unpaged_server.reset()
    return unpaged_server


def seed_images(
    rig: Rig, account: str = SOURCE_ACCOUNT, count: int = ITEM_COUNT, prefix: str = "paged"
) -> tuple[list[str], list[str]]:
    """Register `count` images, each on a new snapshot, and return (image ids, snapshot ids)."""
    image_ids = []
    snapshot_ids = []
    for index in range(count):
        snapshot_id = make_snapshot(rig, account)
        image_ids.append(register_image(rig, snapshot_id, account, name=f"{prefix}-{index}"))
        snapshot_ids.append(snapshot_id)
    return image_ids, snapshot_ids


def collect_pages(ec2: Any, operation: str, **arguments: Any) -> list[list[str]]:
    """Return the item ids of each page that boto3's paginator fetches for `operation`."""
    if operation == "describe_images":
        items_key, id_key = "Images", "ImageId"
    else:
        items_key, id_key = "Snapshots", "SnapshotId"
    paginator = ec2.get_paginator(operation)
    return [[item[id_key] for item in page[items_key]] for page in paginator.paginate(**arguments)]


def flatten(pages: list[list[str]]) -> list[str]:
    return [item_id for page in pages for item_id in page]


def error_of(error: pytest.ExceptionInfo) -> tuple[str, int]:
    response = error.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


# One request


def test_describe_images_returns_one_page(paging_rig: Rig) -> None:
    image_ids, _snapshot_ids = seed_images(paging_rig)
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)

    response = ec2.describe_images(Owners=["self"])
    assert len(response["Images"]) == PAGE_SIZE
    assert response.get("NextToken")
    assert {image["ImageId"] for image in response["Images"]} <= set(image_ids)


def test_describe_snapshots_returns_one_page(paging_rig: Rig) -> None:
    _image_ids, snapshot_ids = seed_images(paging_rig)
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)

    response = ec2.describe_snapshots()
    assert len(response["Snapshots"]) == PAGE_SIZE
    assert response.get("NextToken")
    assert {snapshot["SnapshotId"] for snapshot in response["Snapshots"]} <= set(snapshot_ids)


def test_next_token_returns_next_page(paging_rig: Rig) -> None:
    image_ids, _snapshot_ids = seed_images(paging_rig)
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)

    first = ec2.describe_images(Owners=["self"])
    second = ec2.describe_images(Owners=["self"], NextToken=first["NextToken"])
    third = ec2.describe_images(Owners=["self"], NextToken=second["NextToken"])
    pages = [[image["ImageId"] for image in page["Images"]] for page in (first, second, third)]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert "NextToken" not in third
    assert sorted(flatten(pages)) == sorted(image_ids)
    # The same token returns the same page again.
    again = ec2.describe_images(Owners=["self"], NextToken=first["NextToken"])
    assert [image["ImageId"] for image in again["Images"]] == pages[1]


def test_max_results_below_page_size(paging_rig: Rig) -> None:
    seed_images(paging_rig)
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)

    response = ec2.describe_snapshots(MaxResults=1)
    assert len(response["Snapshots"]) == 1
    assert response.get("NextToken")


def test_max_results_above_page_size(paging_rig: Rig) -> None:
    seed_images(paging_rig)
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)

    response = ec2.describe_images(Owners=["self"], MaxResults=1000)
    assert len(response["Images"]) == PAGE_SIZE
    assert response.get("NextToken")


# boto3's paginator


@pytest.mark.parametrize("operation", ["describe_images", "describe_snapshots"])
def test_paginator_collects_every_item(paging_rig: Rig, operation: str) -> None:
    image_ids, snapshot_ids = seed_images(paging_rig)
    expected = image_ids if operation == "describe_images" else snapshot_ids
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)

    pages = collect_pages(ec2, operation)
    collected = flatten(pages)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert len(collected) == len(set(collected))
    assert sorted(collected) == sorted(expected)


def test_paginator_page_size_sets_max_results(paging_rig: Rig) -> None:
    image_ids, _snapshot_ids = seed_images(paging_rig)
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)

    pages = collect_pages(ec2, "describe_images", PaginationConfig={"PageSize": 1})
    assert [len(page) for page in pages] == [1] * ITEM_COUNT
    assert sorted(flatten(pages)) == sorted(image_ids)


def test_pages_stable_when_image_added(paging_rig: Rig) -> None:
    image_ids, _snapshot_ids = seed_images(paging_rig)
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)

    first = ec2.describe_images(Owners=["self"])
    added_id = register_image(paging_rig, make_snapshot(paging_rig), name="added-between-pages")
    collected = [image["ImageId"] for image in first["Images"]]
    token = first["NextToken"]
    # Bounded, so that a token that never advances fails the test instead of hanging it.
    for _request in range(ITEM_COUNT):
        page = ec2.describe_images(Owners=["self"], NextToken=token)
        collected += [image["ImageId"] for image in page["Images"]]
        token = page.get("NextToken")
        if not token:
            break
    assert not token
    assert len(collected) == len(set(collected))
    assert set(image_ids) <= set(collected)
    assert set(collected) <= {*image_ids, added_id}


# Selection before paging


def test_image_filter_applies_before_paging(paging_rig: Rig) -> None:
    image_ids, _snapshot_ids = seed_images(paging_rig)
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)
    selected = image_ids[1:4]

    pages = collect_pages(
        ec2, "describe_images", Owners=["self"], Filters=[{"Name": "image-id", "Values": selected}]
    )
    assert [len(page) for page in pages] == [2, 1]
    assert sorted(flatten(pages)) == sorted(selected)

    by_name = collect_pages(
        ec2, "describe_images", Filters=[{"Name": "name", "Values": ["paged-0", "paged-4"]}]
    )
    assert sorted(flatten(by_name)) == sorted([image_ids[0], image_ids[4]])


def test_snapshot_filter_applies_before_paging(paging_rig: Rig) -> None:
    _image_ids, snapshot_ids = seed_images(paging_rig)
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)
    selected = snapshot_ids[:3]

    pages = collect_pages(
        ec2, "describe_snapshots", Filters=[{"Name": "snapshot-id", "Values": selected}]
    )
    assert [len(page) for page in pages] == [2, 1]
    assert sorted(flatten(pages)) == sorted(selected)


def test_ids_apply_before_paging(paging_rig: Rig) -> None:
    image_ids, snapshot_ids = seed_images(paging_rig)
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)

    images = collect_pages(ec2, "describe_images", ImageIds=image_ids[2:])
    assert [len(page) for page in images] == [2, 1]
    assert sorted(flatten(images)) == sorted(image_ids[2:])

    snapshots = collect_pages(ec2, "describe_snapshots", SnapshotIds=snapshot_ids[:3])
    assert [len(page) for page in snapshots] == [2, 1]
    assert sorted(flatten(snapshots)) == sorted(snapshot_ids[:3])


def test_owners_apply_before_paging(paging_rig: Rig) -> None:
    image_ids, _snapshot_ids = seed_images(paging_rig)
    source_ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)
    shared_ids = image_ids[:3]
    for image_id in shared_ids:
        source_ec2.modify_image_attribute(
            ImageId=image_id, LaunchPermission={"Add": [{"UserId": TARGET_ACCOUNT}]}
        )
    own_ids, _own_snapshot_ids = seed_images(paging_rig, TARGET_ACCOUNT, count=3, prefix="own")
    target_ec2 = paging_rig.client("ec2", TARGET_ACCOUNT)

    from_source = collect_pages(target_ec2, "describe_images", Owners=[SOURCE_ACCOUNT])
    assert [len(page) for page in from_source] == [2, 1]
    assert sorted(flatten(from_source)) == sorted(shared_ids)

    own = collect_pages(target_ec2, "describe_images", Owners=["self"])
    assert sorted(flatten(own)) == sorted(own_ids)

    shared_with_target = collect_pages(target_ec2, "describe_images", ExecutableUsers=["self"])
    assert sorted(flatten(shared_with_target)) == sorted(shared_ids)


def test_deprecated_hidden_before_paging(paging_rig: Rig) -> None:
    image_ids, _snapshot_ids = seed_images(paging_rig)
    source_ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)
    for image_id in image_ids:
        source_ec2.modify_image_attribute(
            ImageId=image_id, LaunchPermission={"Add": [{"UserId": TARGET_ACCOUNT}]}
        )
    deprecated_ids = image_ids[:2]
    for image_id in deprecated_ids:
        source_ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt="2020-01-01T00:00:00Z")
    target_ec2 = paging_rig.client("ec2", TARGET_ACCOUNT)

    # Two of the five images are hidden, so the other three make a full page and a page of one.
    visible = collect_pages(target_ec2, "describe_images", ExecutableUsers=["self"])
    assert [len(page) for page in visible] == [2, 1]
    assert sorted(flatten(visible)) == sorted(image_ids[2:])

    everything = collect_pages(
        target_ec2, "describe_images", ExecutableUsers=["self"], IncludeDeprecated=True
    )
    assert [len(page) for page in everything] == [2, 2, 1]
    assert sorted(flatten(everything)) == sorted(image_ids)

    own = collect_pages(source_ec2, "describe_images", Owners=["self"], IncludeDeprecated=True)
    assert sorted(flatten(own)) == sorted(image_ids)


# Invalid requests


def token_of(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        token_of("not json"),
        token_of('{"operation": "DescribeImages"}'),
        token_of('["DescribeImages", "ami-0123456789abcdef0"]'),
    ],
)
def test_invalid_next_token_rejected(paging_rig: Rig, token: str) -> None:
    seed_images(paging_rig)
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)

    with pytest.raises(ClientError) as error:
        ec2.describe_images(Owners=["self"], NextToken=token)
    assert error_of(error) == ("InvalidParameterValue", 400)
    with pytest.raises(ClientError) as error:
        ec2.describe_snapshots(NextToken=token)
    assert error_of(error) == ("InvalidParameterValue", 400)


def test_token_of_other_operation_rejected(paging_rig: Rig) -> None:
    seed_images(paging_rig)
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)

    image_token = ec2.describe_images(Owners=["self"])["NextToken"]
    with pytest.raises(ClientError) as error:
        ec2.describe_snapshots(NextToken=image_token)
    assert error_of(error) == ("InvalidParameterValue", 400)
    assert "NextToken is invalid" in str(error.value)


def test_max_results_zero_rejected(paging_rig: Rig) -> None:
    ec2 = paging_rig.client("ec2", SOURCE_ACCOUNT)

    with pytest.raises(ClientError) as error:
        ec2.describe_images(Owners=["self"], MaxResults=0)
    assert error_of(error) == ("InvalidParameterValue", 400)
    assert "MaxResults" in str(error.value)


# Without paging


def test_without_pagination_returns_everything(unpaged_rig: Rig) -> None:
    image_ids, snapshot_ids = seed_images(unpaged_rig)
    ec2 = unpaged_rig.client("ec2", SOURCE_ACCOUNT)

    images = ec2.describe_images(Owners=["self"])
    assert sorted(image["ImageId"] for image in images["Images"]) == sorted(image_ids)
    assert "NextToken" not in images
    snapshots = ec2.describe_snapshots(MaxResults=PAGE_SIZE)
    assert sorted(s["SnapshotId"] for s in snapshots["Snapshots"]) == sorted(snapshot_ids)
    assert "NextToken" not in snapshots


def test_unset_page_size_returns_everything(rig: Rig) -> None:
    image_ids, snapshot_ids = seed_images(rig)
    ec2 = rig.client("ec2", SOURCE_ACCOUNT)

    images = ec2.describe_images(Owners=["self"])
    assert sorted(image["ImageId"] for image in images["Images"]) == sorted(image_ids)
    assert "NextToken" not in images
    snapshots = ec2.describe_snapshots()
    assert sorted(s["SnapshotId"] for s in snapshots["Snapshots"]) == sorted(snapshot_ids)
    assert "NextToken" not in snapshots


# AMISHARE_RIG_PAGE_SIZE


@pytest.mark.parametrize("text", ["0", "-3", "two", "1.5"])
def test_page_size_rejects_invalid(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    from fidelity import pagination

    monkeypatch.setenv(PAGE_SIZE_VARIABLE, text)
    with pytest.raises(ValueError, match=PAGE_SIZE_VARIABLE):
        pagination.page_size_from_environment()


@pytest.mark.parametrize(("text", "expected"), [("3", 3), (" 7 ", 7), ("", 0)])
def test_page_size_reads_integer(
    monkeypatch: pytest.MonkeyPatch, text: str, expected: int
) -> None:
    from fidelity import pagination

    monkeypatch.setenv(PAGE_SIZE_VARIABLE, text)
    assert pagination.page_size_from_environment() == expected


def test_server_exits_on_invalid_page_size(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SERVER), "--ready-file", str(tmp_path / "url")],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, PAGE_SIZE_VARIABLE: "0"},
    )
    assert result.returncode == 2
    assert f"{PAGE_SIZE_VARIABLE}='0' is invalid" in result.stderr
    assert not (tmp_path / "url").exists()
