"""Fidelity patches that make moto 5.2.5 behave like AWS where amishare depends on it.

Each module of this package fixes one gap. It defines NAME and apply(), and its docstring states
what AWS does, with the source, and what moto 5.2.5 does instead. The modules import moto, so
import this package only after MOTO_EC2_LOAD_DEFAULT_AMIS is set.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import (
    aws_managed_ebs_key,
    aws_managed_key_sharing,
    copy_image,
    cross_account_keys,
    describe_key_policy,
    ebs_volume_encryption,
    image_attribute_not_found,
    image_deprecation,
    image_name_unique,
    image_snapshots,
    key_policy_validation,
    launch_permission_modifications,
    pagination,
    shared_image_visibility,
    snapshot_permission_modifications,
)

# Patches that wrap the same moto method compose in this order: a later one wraps an earlier one.
PATCHES = [
    ebs_volume_encryption,
    key_policy_validation,
    describe_key_policy,
    aws_managed_ebs_key,
    image_snapshots,
    copy_image,
    image_name_unique,
    shared_image_visibility,
    image_attribute_not_found,
    launch_permission_modifications,
    snapshot_permission_modifications,
    aws_managed_key_sharing,
    cross_account_keys,
    # Before pagination, so that pages are counted after deprecated images are hidden.
    image_deprecation,
    pagination,
]

NAMES = [patch.NAME for patch in PATCHES]
ALL = "all"


def apply(disabled: Iterable[str] = ()) -> list[str]:
    """Apply every patch not named in `disabled`, and return the names of those applied.

    The name "all" in `disabled` disables every patch.
    """
    disabled = set(disabled)
    unknown = disabled - set(NAMES) - {ALL}
    if unknown:
        raise ValueError(
            f"unknown patch name(s) {', '.join(sorted(unknown))}: expected {ALL} or one of "
            f"{', '.join(NAMES)}"
        )
    if ALL in disabled:
        return []
    applied = []
    for patch in PATCHES:
        if patch.NAME not in disabled:
            patch.apply()
            applied.append(patch.NAME)
    return applied
