//! Planning images: what blocks an image, and the launch and create-volume permission
//! changes of each image that can be shared.

use std::collections::{BTreeMap, BTreeSet};

use super::{Blocker, Change, KeyStatus, LaunchChange, Planner, Severity, VolumeChange};
use crate::copies::{self, CopyKey, CopyPurpose, DeclaredCopy};
use crate::model::{KeyManager, LaunchEntry, Scope};
use crate::observe::{Observed, ObservedImage};
use crate::policy;
use crate::spec::{Grantee, ImageGroup, Spec, Target};

/// Blockers a re-encrypted copy removes: the snapshots are not under the declared key.
const REENCRYPTED: [&str; 3] = ["aws-managed-key", "wrong-key", "snapshot-not-encrypted"];

type Volumes = BTreeMap<(Scope, String), VolumePlan>;

/// Launch permission entries (accounts, organizations, OUs) EC2 allows per image and
/// region: 1,000 by default.
// NOTE: the quota is adjustable on request; an account with a raised quota is refused
// here all the same.
const MAX_LAUNCH_ENTITIES: usize = 1000;

/// Everything declared for one snapshot, which several images may share.
struct VolumePlan {
    image_id: String,
    key_name: Option<String>,
    current: BTreeSet<String>,
    desired: BTreeSet<String>,
}

/// Lists, for each image, the origins of the entries that select it, by id or selector.
fn selections<'a>(
    spec: &'a Spec,
    observed: &'a Observed,
) -> BTreeMap<(Scope, String), Vec<&'a str>> {
    let mut selections: BTreeMap<(Scope, String), Vec<&str>> = BTreeMap::new();
    for (index, group) in spec.images.iter().enumerate() {
        let scope = Scope::new(&group.account, &group.region);
        for image_id in observed.image_ids(index, group) {
            selections
                .entry((scope.clone(), image_id.clone()))
                .or_default()
                .push(&group.origin);
        }
    }
    selections
}

impl Planner<'_> {
    /// Plans every declared image and its copies, and collects the key grants their
    /// targets need.
    pub(super) fn images(&mut self) {
        let (spec, observed) = (self.spec, self.observed);
        let selections = selections(spec, observed);
        let mut volumes = Volumes::new();
        for (index, group) in spec.images.iter().enumerate() {
            let scope = Scope::new(&group.account, &group.region);
            self.selection(index, group, &scope);
            let direct = copies::direct_targets(group);
            let declared = copies::declared(group);
            // Grants follow the declaration, not the image's state: a blocked image may
            // still be shared, and its targets keep their access to the key.
            self.grant(group.key.as_deref(), &direct);
            for copy in declared
                .iter()
                .filter(|c| c.purpose == CopyPurpose::Replica)
            {
                if let CopyKey::Declared(key) = &copy.key {
                    self.grant(Some(key), &copy.targets);
                }
            }
            for image_id in observed.image_ids(index, group) {
                let found = (scope.clone(), image_id.clone());
                let Some(image) = observed.images.get(&found) else {
                    if observed.missing.contains(&found) {
                        self.not_found(&scope, image_id);
                    }
                    continue;
                };
                let entries = selections.get(&found);
                if let Some(entries) = entries.filter(|e| e.len() > 1) {
                    // Reported once, by the first entry; no entry changes the image.
                    if entries[0] == group.origin {
                        self.selected_twice(&scope, image_id, entries);
                    }
                    continue;
                }
                self.image(group, &scope, image, &declared, &mut volumes);
            }
        }
        for ((scope, snapshot_id), volume) in volumes {
            self.volumes(&scope, &snapshot_id, volume);
        }
    }

    /// Blocks an image that more than one entry selects, since their shares would conflict.
    /// The spec check catches an id listed twice, so here at least one entry is a selector.
    fn selected_twice(&mut self, scope: &Scope, image_id: &str, entries: &[&str]) {
        let message = format!("image is selected by {}", entries.join(" and "));
        let hint = "select each image in one entry and list all its targets there: narrow the \
                    `select` name pattern or tags, or remove the id from `ids`";
        self.blocked(
            scope,
            image_id,
            Blocker::new("image-selected-twice", message, hint),
        );
    }

    /// Reports what a group's selector matched, and a selector that matched nothing.
    fn selection(&mut self, index: usize, group: &ImageGroup, scope: &Scope) {
        let (Some(selector), Some(ids)) = (&group.selector, self.observed.selected.get(&index))
        else {
            return;
        };
        let resource = format!("{}.select", group.origin);
        if !ids.is_empty() {
            let message = format!("selector matched {}", ids.join(", "));
            self.finding(
                Severity::Note,
                "selector-matched",
                scope,
                &resource,
                message,
                None,
            );
            return;
        }
        let message = "selector matched no image".to_owned();
        if selector.must_match {
            self.blocked(
                scope,
                &resource,
                Blocker::new(
                    "selector-matched-nothing",
                    message,
                    "check the name pattern and tags, or set `must_match: false`",
                ),
            );
        } else {
            self.finding(Severity::Warning, "selector-matched-nothing", scope, &resource, message, Some("check the name pattern and tags; set `must_match: true` to fail the plan instead"));
        }
    }

    /// Blocks an image DescribeImages did not return. EC2 stops returning an image once
    /// it is deregistered, so a deregistered image and a wrong id look the same.
    fn not_found(&mut self, scope: &Scope, image_id: &str) {
        let message = format!(
            "image `{image_id}` was not found in account `{}`, region `{}`",
            scope.account, scope.region
        );
        self.blocked(
            scope,
            image_id,
            Blocker::new(
                "image-not-found",
                message,
                "the image may be deregistered; remove it from the spec, or fix its id, account or region",
            ),
        );
    }

    /// Blocks an image whose deprecation time has passed. Its targets can still launch it
    /// by id, but EC2 hides it from their DescribeImages, so amishare shares and copies it
    /// no further and leaves its permissions as they are.
    fn deprecated(&mut self, scope: &Scope, image: &ObservedImage) -> bool {
        let Some(time) = &image.image.deprecation_time else {
            return false;
        };
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        // Both are ISO 8601 in UTC; the first 19 characters (to the second) compare in time order.
        if time.get(..19) > now.get(..19) {
            return false;
        }
        let message = format!(
            "image is deprecated since {time}, so it is not shared; targets can still launch it by id, but it no longer appears in their DescribeImages results"
        );
        self.blocked(
            scope,
            &image.image.id,
            Blocker::new(
                "image-deprecated",
                message,
                "share a newer image (a selector with `newest` follows new images), or cancel the deprecation with DisableImageDeprecation",
            ),
        );
        true
    }

    /// Plans one image: its own shares, or its re-encrypted copy's, and its other copies.
    fn image(
        &mut self,
        group: &ImageGroup,
        scope: &Scope,
        image: &ObservedImage,
        declared: &[DeclaredCopy<'_>],
        volumes: &mut Volumes,
    ) {
        if self.deprecated(scope, image) {
            return;
        }
        let direct = copies::direct_targets(group);
        let reencrypt = declared
            .iter()
            .find(|c| c.purpose == CopyPurpose::Reencrypt);
        let copyable =
            image.image.state == "available" && image.snapshots.iter().all(|s| !s.missing);
        let original = (scope, &image.image);
        // The image the direct targets get: the image itself, or its re-encrypted copy.
        let blocker = self.image_blocker(group, image);
        // With every target served by a copy under its own key, the image itself is not
        // shared, so what its snapshots are under does not matter.
        let blocker = blocker.filter(|b| !(direct.is_empty() && REENCRYPTED.contains(&b.code)));
        let shared: Option<(Scope, ObservedImage)> = match blocker {
            None => {
                self.share(scope, image, &direct, group.key.as_deref(), volumes);
                Some((scope.clone(), image.clone()))
            }
            Some(blocker)
                if copyable && REENCRYPTED.contains(&blocker.code) && reencrypt.is_some() =>
            {
                let copy = reencrypt.and_then(|c| self.copy(c, original, original));
                if let Some(copy) = &copy {
                    self.share(scope, copy, &direct, group.key.as_deref(), volumes);
                }
                copy.map(|c| (scope.clone(), c))
            }
            Some(blocker) => {
                self.blocked(scope, &image.image.id, blocker);
                None
            }
        };
        if !copyable {
            return;
        }
        for copy in declared {
            match copy.purpose {
                CopyPurpose::Reencrypt => {}
                CopyPurpose::Replica | CopyPurpose::TargetKey { .. } => {
                    if let Some(made) = self.copy(copy, original, original) {
                        let key = match &copy.key {
                            CopyKey::Declared(name) => Some(name.as_str()),
                            CopyKey::Arn(_) => None,
                        };
                        self.share(&copy.dest, &made, &copy.targets, key, volumes);
                    }
                }
                CopyPurpose::KeptByTarget { .. } => {
                    if let Some((source_scope, source)) = &shared {
                        self.copy(copy, original, (source_scope, &source.image));
                    }
                }
            }
        }
    }

    /// Plans an image's launch permissions for `targets`, and records the
    /// create-volume permissions its snapshots need.
    fn share(
        &mut self,
        scope: &Scope,
        image: &ObservedImage,
        targets: &[Target],
        key: Option<&str>,
        volumes: &mut Volumes,
    ) {
        self.launch(scope, image, targets, key);
        let copiers = copy_accounts(targets);
        for snapshot in &image.snapshots {
            let Some(current) = &snapshot.volume_permissions else {
                continue;
            };
            let entry = volumes
                .entry((scope.clone(), snapshot.snapshot.id.clone()))
                .or_insert_with(|| VolumePlan {
                    image_id: image.image.id.clone(),
                    key_name: key.map(str::to_owned),
                    current: current.clone(),
                    desired: BTreeSet::new(),
                });
            entry.desired.extend(copiers.iter().cloned());
        }
    }

    /// Adds what `targets` need on the declared key `name` to that key's grants.
    fn grant(&mut self, name: Option<&str>, targets: &[Target]) {
        let Some(name) = name else { return };
        let Some(key) = self.usable_key(name) else {
            return;
        };
        let arn = key.metadata.arn.clone();
        let partition = key.partition().to_owned();
        let members = self.grants.entry(arn).or_default();
        for target in targets {
            let (sid, member) = match &target.grantee {
                Grantee::Account(id) => {
                    (policy::SID_ACCOUNTS, policy::account_root(&partition, id))
                }
                Grantee::Organization { id, .. } => (policy::SID_ORGANIZATIONS, id.clone()),
                Grantee::OrganizationalUnit { org_path, .. } => (policy::SID_OUS, org_path.clone()),
                // Encrypted images are never public (see `image_blocker`), so `all` needs no grant.
                Grantee::Public => continue,
            };
            members.entry(sid.to_owned()).or_default().insert(member);
        }
    }

    /// Why an image cannot be shared as declared.
    fn image_blocker(&self, group: &ImageGroup, image: &ObservedImage) -> Option<Blocker> {
        if image.image.state != "available" {
            return Some(state_blocker(&image.image.state));
        }
        let declared = match &group.key {
            None => None,
            Some(name) => match self.keys.get(name) {
                Some(KeyStatus::Blocked(_)) | None => {
                    return Some(Blocker::new(
                        "key-blocked",
                        format!("declared key `{name}` cannot be managed; see its own finding"),
                        "fix the key first; this image is shared once its key can grant the targets",
                    ));
                }
                Some(_) => self.usable_key(name).map(|k| k.metadata.arn.as_str()),
            },
        };
        let public = group.targets.iter().any(|t| t.grantee == Grantee::Public);
        for observed in &image.snapshots {
            let snapshot = &observed.snapshot;
            if observed.missing {
                return Some(Blocker::new(
                    "snapshot-not-found",
                    format!("snapshot `{}` of the image was not found", snapshot.id),
                    "check that the image's snapshots exist in its account and region",
                ));
            }
            let found = snapshot
                .kms_key_id
                .as_deref()
                .filter(|_| snapshot.encrypted);
            if found.is_some() && public {
                return Some(Blocker::new(
                    "encrypted-public",
                    format!(
                        "snapshot `{}` is encrypted, and EC2 does not make images with encrypted snapshots public",
                        snapshot.id
                    ),
                    "remove `group: all`, or share an unencrypted image",
                ));
            }
            match (found, declared) {
                (None, None) => {}
                (None, Some(_)) => {
                    return Some(Blocker::new(
                        "snapshot-not-encrypted",
                        format!(
                            "snapshot `{}` is not encrypted, but the spec declares key `{}`",
                            snapshot.id,
                            group.key.as_deref().unwrap_or_default()
                        ),
                        "remove `key` from this image entry, or share an encrypted copy",
                    ));
                }
                (Some(found), declared) if Some(found) != declared => {
                    return Some(self.wrong_key(group, &snapshot.id, found));
                }
                (Some(_), _) => {}
            }
        }
        None
    }

    fn wrong_key(&self, group: &ImageGroup, snapshot_id: &str, found: &str) -> Blocker {
        let aws_managed = matches!(self.observed.snapshot_keys.get(found), Some(Ok(m)) if m.manager == KeyManager::Aws);
        if aws_managed {
            return Blocker::new(
                "aws-managed-key",
                format!(
                    "snapshot `{snapshot_id}` is encrypted under the AWS managed key `{found}`, whose policy cannot be changed, so the image cannot be shared"
                ),
                "share a copy re-encrypted under a customer managed key: set `reencrypt: true` on this image entry",
            );
        }
        match &group.key {
            Some(name) => Blocker::new(
                "wrong-key",
                format!(
                    "snapshot `{snapshot_id}` is encrypted under `{found}`, not under the declared key `{name}`"
                ),
                "declare the key the snapshots are under, or set `reencrypt: true` to share a copy under the declared key",
            ),
            None => Blocker::new(
                "undeclared-key",
                format!(
                    "snapshot `{snapshot_id}` is encrypted under `{found}`, but the image entry declares no key"
                ),
                "declare that key under `keys` and name it in this entry's `key`, so its policy can grant the targets",
            ),
        }
    }

    fn launch(
        &mut self,
        scope: &Scope,
        image: &ObservedImage,
        targets: &[Target],
        key: Option<&str>,
    ) {
        let desired: BTreeSet<LaunchEntry> =
            targets.iter().map(|t| t.grantee.launch_entry()).collect();
        let add: Vec<LaunchEntry> = desired.difference(&image.launch).cloned().collect();
        let extra: Vec<LaunchEntry> = image.launch.difference(&desired).cloned().collect();
        let described = extra.iter().map(ToString::to_string).collect();
        let remove = self.prune_or_report(
            scope,
            &image.image.id,
            "undeclared-launch-permission",
            described,
            extra,
        );
        if add.is_empty() && remove.is_empty() {
            return;
        }
        self.still_covered(scope, &image.image.id, &remove, &desired);
        let after = image.launch.len() + add.len() - remove.len();
        if after > MAX_LAUNCH_ENTITIES {
            let message = format!(
                "image would have {after} launch permission entries, more than the {MAX_LAUNCH_ENTITIES} EC2 allows"
            );
            self.blocked(scope, &image.image.id, Blocker::new("too-many-launch-permissions", message, "share with organizations or OUs, whose members do not count, instead of many accounts"));
            return;
        }
        self.plan
            .changes
            .push(Change::LaunchPermissions(LaunchChange {
                scope: scope.clone(),
                image_id: image.image.id.clone(),
                image_name: image.image.name.clone(),
                key_name: key.map(str::to_owned),
                add,
                remove,
            }));
    }

    fn volumes(&mut self, scope: &Scope, snapshot_id: &str, volume: VolumePlan) {
        let add: Vec<String> = volume
            .desired
            .difference(&volume.current)
            .cloned()
            .collect();
        let extra: Vec<String> = volume
            .current
            .difference(&volume.desired)
            .cloned()
            .collect();
        let described = extra
            .iter()
            .map(|a| format!("create volume permission for account {a}"))
            .collect();
        let remove = self.prune_or_report(
            scope,
            snapshot_id,
            "undeclared-volume-permission",
            described,
            extra,
        );
        if add.is_empty() && remove.is_empty() {
            return;
        }
        self.plan
            .changes
            .push(Change::VolumePermissions(VolumeChange {
                scope: scope.clone(),
                image_id: volume.image_id,
                snapshot_id: snapshot_id.to_owned(),
                key_name: volume.key_name,
                add,
                remove,
            }));
    }

    /// Warns when an account loses its launch permission while the image stays shared
    /// with an organization or OU, which may well include that account.
    fn still_covered(
        &mut self,
        scope: &Scope,
        image_id: &str,
        remove: &[LaunchEntry],
        kept: &BTreeSet<LaunchEntry>,
    ) {
        let groups: Vec<String> = kept
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    LaunchEntry::Organization(_) | LaunchEntry::OrganizationalUnit(_)
                )
            })
            .map(ToString::to_string)
            .collect();
        if groups.is_empty() {
            return;
        }
        for entry in remove
            .iter()
            .filter(|e| matches!(e, LaunchEntry::Account(_)))
        {
            let message = format!(
                "removing {entry} does not revoke access it has through {}",
                groups.join(", ")
            );
            self.finding(Severity::Warning, "removal-still-covered", scope, image_id, message, Some("EC2 grants launch through each entry; move the account out of the organization or OU to revoke it"));
        }
    }

    /// Returns `extra` to remove when pruning; otherwise reports each entry and keeps it.
    fn prune_or_report<T>(
        &mut self,
        scope: &Scope,
        resource: &str,
        code: &'static str,
        described: Vec<String>,
        extra: Vec<T>,
    ) -> Vec<T> {
        if self.spec.settings.prune {
            return extra;
        }
        if described.len() > MAX_FINDINGS_PER_RESOURCE {
            let shown = described[..SHOWN_IN_SUMMARY].join(", ");
            let message = format!(
                "{} entries are not declared ({shown} and {} more); kept because pruning is off",
                described.len(),
                described.len() - SHOWN_IN_SUMMARY
            );
            self.finding(
                Severity::Warning,
                code,
                scope,
                resource,
                message,
                Some("declare them in the spec, or set `settings.prune: true` to remove them"),
            );
            return Vec::new();
        }
        for entry in described {
            self.finding(
                Severity::Warning,
                code,
                scope,
                resource,
                format!("{entry} is not declared; kept because pruning is off"),
                Some("declare it in the spec, or set `settings.prune: true` to remove it"),
            );
        }
        Vec::new()
    }
}

/// Maximum undeclared entries of one image or snapshot that get one finding each. More
/// are reported in one finding, so that a thousand stray shares do not bury the plan.
const MAX_FINDINGS_PER_RESOURCE: usize = 10;

/// Entries a summary finding names before it counts the rest.
const SHOWN_IN_SUMMARY: usize = 5;

/// Accounts among `targets` that may also copy the image.
fn copy_accounts(targets: &[Target]) -> Vec<String> {
    targets
        .iter()
        .filter(|t| t.copy)
        .filter_map(|t| match &t.grantee {
            Grantee::Account(id) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// Explains why an image in `state`, which is not `available`, is not shared.
fn state_blocker(state: &str) -> Blocker {
    let message = format!("image is `{state}`, not `available`");
    let (code, hint) = match state {
        "pending" => (
            "image-pending",
            "run plan again once the image is available",
        ),
        "disabled" => (
            "image-disabled",
            "re-enable the image with EnableImage, or remove it from the spec",
        ),
        "deregistered" => (
            "image-deregistered",
            "remove the image from the spec, or list the image that replaces it",
        ),
        _ => (
            "image-not-available",
            "check the image's state reason with DescribeImages; share a working image instead",
        ),
    };
    Blocker::new(code, message, hint)
}
