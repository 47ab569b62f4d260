"""Image deprecation: EnableImageDeprecation, DisableImageDeprecation and DescribeImages."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError
from conftest import SOURCE_ACCOUNT, Rig
from world import make_encrypted_image


@pytest.mark.parametrize("operation", ["enable_image_deprecation", "disable_image_deprecation"])
def test_deprecation_gap_in_moto(moto_rig: Rig, operation: str) -> None:
    image_id, _snapshot_id, _key = make_encrypted_image(moto_rig)
    ec2 = moto_rig.client("ec2", SOURCE_ACCOUNT)
    arguments = {"ImageId": image_id}
    if operation == "enable_image_deprecation":
        arguments["DeprecateAt"] = "2030-01-01T00:00:00Z"
    # moto 5.2.5 has no handler for either action, so it returns HTTP 500 with an HTML page.
    with pytest.raises((ClientError, ResponseParserError)) as error:
        getattr(ec2, operation)(**arguments)
    assert "500 Internal Server Error" in str(error.value)
