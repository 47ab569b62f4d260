//! The copies a spec declares: re-encrypted copies, replicas in other regions, copies
//! under a target's own key, and copies a target keeps itself. This module derives them
//! from the spec alone; `plan` decides which are needed from the observed state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{Scope, copy_of};
use crate::spec::{Grantee, ImageGroup, Spec, Target};

/// Why a copy exists.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CopyPurpose {
    /// The image is not under the declared key, so a copy under it is shared instead.
    Reencrypt,
    /// A copy in another region, shared like the image.
    Replica,
    /// A copy the source makes under the target's own key and shares with the target.
    TargetKey { target: String },
    /// A copy the target makes under its own key and keeps.
    KeptByTarget { target: String },
}

/// The key a copy is encrypted under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyKey {
    /// A key declared under `keys`, by logical name.
    Declared(String),
    /// A key of a target account, by ARN.
    Arn(String),
}

/// One copy of one image that the spec declares.
#[derive(Clone, Debug)]
pub struct DeclaredCopy<'a> {
    pub group: &'a ImageGroup,
    pub purpose: CopyPurpose,
    /// The account that makes and owns the copy, and the copy's region.
    pub dest: Scope,
    pub key: CopyKey,
    /// Who the copy is shared with.
    pub targets: Vec<Target>,
}

/// Targets that get the image itself (or its re-encrypted copy): all but those that
/// receive a copy under their own key. A target that keeps its own copy needs to copy
/// the image, so it gets createVolumePermission too.
pub fn direct_targets(group: &ImageGroup) -> Vec<Target> {
    group
        .targets
        .iter()
        .filter(|t| t.copy_under.is_none())
        .map(|t| Target {
            copy: t.copy || t.keep_copy_under.is_some(),
            ..t.clone()
        })
        .collect()
}

/// Targets of a replica: those of the image, without the copies made under targets' keys,
/// which are made in the image's own region only.
fn replica_targets(group: &ImageGroup) -> Vec<Target> {
    group
        .targets
        .iter()
        .filter(|t| t.copy_under.is_none() && t.keep_copy_under.is_none())
        .cloned()
        .collect()
}

/// Every copy the group declares for each of its images. The re-encrypted copy is
/// listed whenever `reencrypt` is on; the plan makes it only for an image that needs it.
pub fn declared(group: &ImageGroup) -> Vec<DeclaredCopy<'_>> {
    let home = Scope::new(&group.account, &group.region);
    let mut copies = Vec::new();
    if let (true, Some(key)) = (group.reencrypt, &group.key) {
        copies.push(DeclaredCopy {
            group,
            purpose: CopyPurpose::Reencrypt,
            dest: home.clone(),
            key: CopyKey::Declared(key.clone()),
            targets: direct_targets(group),
        });
    }
    for replica in &group.replicas {
        copies.push(DeclaredCopy {
            group,
            purpose: CopyPurpose::Replica,
            dest: Scope::new(&group.account, &replica.region),
            key: CopyKey::Declared(replica.key.clone()),
            targets: replica_targets(group),
        });
    }
    for target in &group.targets {
        let Grantee::Account(account) = &target.grantee else {
            continue;
        };
        if let Some(arn) = &target.copy_under {
            let share = Target {
                grantee: target.grantee.clone(),
                copy: target.copy,
                copy_under: None,
                keep_copy_under: None,
            };
            copies.push(DeclaredCopy {
                group,
                purpose: CopyPurpose::TargetKey {
                    target: account.clone(),
                },
                dest: home.clone(),
                key: CopyKey::Arn(arn.clone()),
                targets: vec![share],
            });
        }
        if let Some(arn) = &target.keep_copy_under {
            copies.push(DeclaredCopy {
                group,
                purpose: CopyPurpose::KeptByTarget {
                    target: account.clone(),
                },
                dest: Scope::new(account, &group.region),
                key: CopyKey::Arn(arn.clone()),
                targets: Vec::new(),
            });
        }
    }
    copies
}

/// Returns where copies may live, with the `amishare:copy-of` values to look for there.
pub fn searches(spec: &Spec) -> BTreeMap<Scope, BTreeSet<String>> {
    let mut searches: BTreeMap<Scope, BTreeSet<String>> = BTreeMap::new();
    for group in &spec.images {
        let source = Scope::new(&group.account, &group.region);
        for copy in declared(group) {
            let values = searches.entry(copy.dest).or_default();
            values.extend(group.image_ids.iter().map(|id| copy_of(&source, id)));
        }
    }
    searches
}

/// Keys named by ARN, with the account and region to describe each from: the account
/// that makes copies under it.
pub fn arn_keys(spec: &Spec) -> BTreeMap<String, Scope> {
    let mut keys = BTreeMap::new();
    for group in &spec.images {
        for copy in declared(group) {
            if let CopyKey::Arn(arn) = copy.key {
                keys.entry(arn).or_insert(copy.dest);
            }
        }
    }
    keys
}

/// Returns every account and region a spec's copies are made in.
pub fn scopes(spec: &Spec) -> BTreeSet<Scope> {
    spec.images
        .iter()
        .flat_map(declared)
        .map(|c| c.dest)
        .collect()
}
