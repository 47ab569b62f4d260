"""DescribeImages and DescribeSnapshots return their results in pages, with a NextToken.

AWS: both operations return at most MaxResults items per response. While more items remain, the
response has a NextToken, and a request that passes it back gets the next page. The last page has
no NextToken (EC2 API Reference: DescribeImages and DescribeSnapshots, MaxResults and NextToken,
as the botocore 1.44.8 service model documents them). An invalid token fails with HTTP 400,
InvalidParameterValue, "The NextToken is invalid." (the DescribeImages error that EC2 returned to
the Karpenter controller, as reported on GitHub in aws/karpenter-provider-aws).

moto 5.2.5: ignores MaxResults and NextToken and returns every item in one response.

The patch pages only when AMISHARE_RIG_PAGE_SIZE is a positive integer N at server start. Then a
response contains at most min(N, MaxResults) items, after ImageIds, SnapshotIds, Owners,
ExecutableUsers and Filters have selected them. Items come in order of image or snapshot id, and
a token marks the last id returned, so items created or deleted between two requests shift no
other item into or out of the remaining pages. When the variable is unset or empty, both
operations return everything at once, as in moto.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidParameterValue
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

NAME = "pagination"

PAGE_SIZE_VARIABLE = "AMISHARE_RIG_PAGE_SIZE"
# NOTE: EC2's message for DescribeSnapshots is assumed to match the one seen for DescribeImages.
INVALID_TOKEN_MESSAGE = "The NextToken is invalid."

logger = logging.getLogger("testrig.fidelity.pagination")

_page_size = 0


def apply() -> None:
    global _page_size
    _page_size = page_size_from_environment()
    if not _page_size:
        logger.info(
            "%s is unset or empty, so DescribeImages and DescribeSnapshots are not paged",
            PAGE_SIZE_VARIABLE,
        )
        return
    logger.info(
        "DescribeImages and DescribeSnapshots return at most %d items per page", _page_size
    )
    AmisResponse.describe_images = _paginate(
        AmisResponse.describe_images, "DescribeImages", "Images"
    )
    ElasticBlockStore.describe_snapshots = _paginate(
        ElasticBlockStore.describe_snapshots, "DescribeSnapshots", "Snapshots"
    )


def page_size_from_environment() -> int:
    """Read AMISHARE_RIG_PAGE_SIZE, returning 0 when it is unset or empty (no paging)."""
    text = os.environ.get(PAGE_SIZE_VARIABLE, "").strip()
    if not text:
        return 0
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 1:
        raise ValueError(
            f"{PAGE_SIZE_VARIABLE}={text!r} is invalid: expected a positive integer "
            "(items per page), or leave it unset to disable paging"
        )
    return size


def _paginate(moto_method: Any, operation: str, items_key: str) -> Any:
    """Wrap a moto response method so that it returns one page of its `items_key` list."""

    def method(self: Any) -> ActionResult:
        limit = _page_limit(self._get_param("MaxResults"))
        after = _decode_token(self._get_param("NextToken"), operation)

        items = moto_method(self).result[items_key]
        remaining = sorted(items, key=lambda item: item.id)
        if after is not None:
            remaining = [item for item in remaining if item.id > after]

        page = remaining[:limit]
        paged_fields = {items_key: page}
        if len(remaining) > limit:
            paged_fields["NextToken"] = _encode_token(operation, page[-1].id)
        return ActionResult(paged_fields)

    method.__name__ = moto_method.__name__
    return method


def _page_limit(max_results: Any) -> int:
    if max_results is None or max_results == "":
        return _page_size
    try:
        requested = int(max_results)
    except (TypeError, ValueError):
        requested = 0
    # NOTE: only values below 1 are rejected. The boto3 1.26.92 documentation gives
    # DescribeSnapshots a MaxResults range of 5 to 1000, which this patch does not check.
    if requested < 1:
        raise InvalidParameterValue(
            f"Value ({max_results}) for parameter MaxResults is invalid: expected an integer of "
            "at least 1"
        )
    return min(_page_size, requested)


def _encode_token(operation: str, last_id: str) -> str:
    payload = json.dumps({"operation": operation, "after": last_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode("utf-8")).decode("ascii")


def _decode_token(token: Any, operation: str) -> str | None:
    """Decode a NextToken into the last id of the previous page, or None when there is no token.

    Raises InvalidParameterValue for a token this patch did not issue for `operation`.
    """
    if token is None or token == "":
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(str(token).encode("ascii")))
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or payload.get("operation") != operation:
        raise InvalidParameterValue(INVALID_TOKEN_MESSAGE)
    after = payload.get("after")
    if not isinstance(after, str) or not after:
        raise InvalidParameterValue(INVALID_TOKEN_MESSAGE)
    return after
