//! Diffs the spec against observed state into a [`Plan`]: the changes to make, and
//! findings (blocked changes, warnings) as data. Nothing here calls AWS.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{KeyManager, LaunchEntry, Scope};
use crate::observe::{Observed, ObservedImage, ObservedKey};
use crate::policy::{self, Members, Policy};
use crate::spec::{Grantee, ImageGroup, Spec};

/// What `apply` would do, and why some of it cannot be done.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub findings: Vec<Finding>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn blocked(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Blocked)
    }
}

/// One change to live state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    KeyPolicy(KeyPolicyChange),
    VolumePermissions(VolumeChange),
    LaunchPermissions(LaunchChange),
}

impl Change {
    pub fn scope(&self) -> &Scope {
        match self {
            Change::KeyPolicy(c) => &c.scope,
            Change::VolumePermissions(c) => &c.scope,
            Change::LaunchPermissions(c) => &c.scope,
        }
    }
}

/// A rewrite of the `amishare-` statements of one key policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyPolicyChange {
    pub scope: Scope,
    pub key_name: String,
    pub key_id: String,
    pub key_arn: String,
    /// `(sid, member)` pairs the change grants.
    pub added: Vec<(String, String)>,
    /// `(sid, member)` pairs the change revokes, orphaned unique ids included.
    pub removed: Vec<(String, String)>,
    /// Members every known managed statement should have afterwards.
    pub target: Members,
    /// Managed statements with unknown `Sid`s to remove.
    pub drop: BTreeSet<String>,
    /// The policy as read, and as it will be, pretty-printed for review.
    pub before: String,
    pub after: String,
}

/// createVolumePermission accounts to add to and remove from one snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VolumeChange {
    pub scope: Scope,
    pub image_id: String,
    pub snapshot_id: String,
    /// The declared key the image's grants depend on.
    pub key_name: Option<String>,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

/// launchPermission entries to add to and remove from one image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaunchChange {
    pub scope: Scope,
    pub image_id: String,
    pub image_name: Option<String>,
    pub key_name: Option<String>,
    pub add: Vec<LaunchEntry>,
    pub remove: Vec<LaunchEntry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A declared change that cannot be made until the user acts.
    Blocked,
    /// Something the user should act on; nothing is blocked.
    Warning,
    /// Something the plan does that deserves a mention, such as a repair.
    Note,
}

/// Something the plan found that is not a change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable kebab-case identifier, such as `aws-managed-key`.
    pub code: String,
    pub scope: Scope,
    /// The image, snapshot or key the finding is about.
    pub resource: String,
    pub message: String,
    pub hint: Option<String>,
}

/// Computes the plan for `spec` against `observed`.
pub fn plan(spec: &Spec, observed: &Observed) -> Plan {
    let mut planner = Planner {
        spec,
        observed,
        plan: Plan::default(),
        grants: BTreeMap::new(),
    };
    for group in &spec.images {
        for image_id in &group.image_ids {
            let scope = Scope::new(&group.account, &group.region);
            if let Some(image) = observed.images.get(&(scope.clone(), image_id.clone())) {
                planner.image(group, &scope, image);
            }
        }
    }
    for key in &spec.keys {
        planner.key(&key.name);
    }
    let mut plan = planner.plan;
    plan.changes.sort_by(|a, b| order(a).cmp(&order(b)));
    plan.findings.sort_by(|a, b| {
        (a.severity, &a.scope, &a.resource).cmp(&(b.severity, &b.scope, &b.resource))
    });
    plan
}

fn order(change: &Change) -> (&Scope, u8, &str, &str) {
    match change {
        Change::KeyPolicy(c) => (&c.scope, 0, &c.key_name, ""),
        Change::LaunchPermissions(c) => (&c.scope, 1, &c.image_id, ""),
        Change::VolumePermissions(c) => (&c.scope, 1, &c.image_id, &c.snapshot_id),
    }
}

struct Planner<'a> {
    spec: &'a Spec,
    observed: &'a Observed,
    plan: Plan,
    /// Members each declared key's managed statements need, by key name.
    grants: BTreeMap<String, Members>,
}

impl Planner<'_> {
    fn finding(
        &mut self,
        severity: Severity,
        code: &'static str,
        scope: &Scope,
        resource: &str,
        message: String,
        hint: Option<&str>,
    ) {
        self.plan.findings.push(Finding {
            severity,
            code: code.to_owned(),
            scope: scope.clone(),
            resource: resource.to_owned(),
            message,
            hint: hint.map(str::to_owned),
        });
    }

    fn image(&mut self, group: &ImageGroup, scope: &Scope, image: &ObservedImage) {
        if let Some((code, message, hint)) = self.blocker(group, image) {
            self.finding(
                Severity::Blocked,
                code,
                scope,
                &image.image.id,
                message,
                Some(&hint),
            );
            return;
        }
        self.launch(group, scope, image);
        for snapshot in &image.snapshots {
            self.volumes(group, scope, &image.image.id, snapshot);
        }
        if let Some(key) = &group.key {
            let partition = match self.observed.keys.get(key) {
                Some(ObservedKey::Found { metadata, .. }) => {
                    policy::partition_of(&metadata.arn).to_owned()
                }
                _ => "aws".to_owned(),
            };
            let members = self.grants.entry(key.clone()).or_default();
            for target in &group.targets {
                let (sid, member) = match &target.grantee {
                    Grantee::Account(id) => {
                        (policy::SID_ACCOUNTS, policy::account_root(&partition, id))
                    }
                    Grantee::Organization { id, .. } => (policy::SID_ORGANIZATIONS, id.clone()),
                    Grantee::OrganizationalUnit { org_path, .. } => {
                        (policy::SID_OUS, org_path.clone())
                    }
                    // Public images need no key grant: encrypted snapshots cannot be public.
                    Grantee::Public => continue,
                };
                members.entry(sid.to_owned()).or_default().insert(member);
            }
        }
    }

    /// Why an image cannot be shared as declared, as (code, message, hint).
    fn blocker(
        &self,
        group: &ImageGroup,
        image: &ObservedImage,
    ) -> Option<(&'static str, String, String)> {
        if image.image.state != "available" {
            return Some((
                "image-not-available",
                format!("image is `{}`, not `available`", image.image.state),
                "share it once it is available; run plan again then".to_owned(),
            ));
        }
        let declared = group
            .key
            .as_ref()
            .map(|name| (name, self.observed.keys.get(name)));
        if let Some((name, key)) = &declared {
            match key {
                Some(ObservedKey::Found { metadata, .. }) if !metadata.is_usable() => {
                    return Some((
                        "key-not-usable",
                        format!("declared key `{name}` ({}) is `{}`", metadata.arn, metadata.state),
                        "enable the key or cancel its deletion; images under it cannot be launched by anyone while it is not enabled".to_owned(),
                    ));
                }
                Some(ObservedKey::Unreadable(err)) => {
                    return Some(("key-unreadable", format!("declared key `{name}` cannot be read: {err}"), "check the key reference and that the account's role may call DescribeKey and GetKeyPolicy".to_owned()));
                }
                _ => {}
            }
        }
        for observed in &image.snapshots {
            let snapshot = &observed.snapshot;
            let found_key = snapshot
                .kms_key_id
                .as_deref()
                .filter(|_| snapshot.encrypted);
            let declared_arn = declared.as_ref().and_then(|(_, key)| match key {
                Some(ObservedKey::Found { metadata, .. }) => Some(metadata.arn.as_str()),
                _ => None,
            });
            match (found_key, declared_arn) {
                (None, None) => {}
                (None, Some(_)) => {
                    return Some((
                        "snapshot-not-encrypted",
                        format!(
                            "snapshot `{}` is not encrypted, but the spec declares key `{}`",
                            snapshot.id,
                            group.key.as_deref().unwrap_or_default()
                        ),
                        "remove `key` from this image entry, or share an encrypted copy".to_owned(),
                    ));
                }
                (Some(found), declared_arn) if Some(found) != declared_arn => {
                    return Some(self.wrong_key(group, &snapshot.id, found));
                }
                (Some(_), _) => {}
            }
        }
        None
    }

    fn wrong_key(
        &self,
        group: &ImageGroup,
        snapshot_id: &str,
        found: &str,
    ) -> (&'static str, String, String) {
        let aws_managed = matches!(self.observed.snapshot_keys.get(found), Some(Ok(m)) if m.manager == KeyManager::Aws);
        if aws_managed {
            return (
                "aws-managed-key",
                format!("snapshot `{snapshot_id}` is encrypted under the AWS managed key `{found}`, whose policy cannot be changed, so the image cannot be shared"),
                "share a copy of the image re-encrypted under a customer managed key (CopyImage with Encrypted and KmsKeyId)".to_owned(),
            );
        }
        match &group.key {
            Some(name) => (
                "wrong-key",
                format!("snapshot `{snapshot_id}` is encrypted under `{found}`, not under the declared key `{name}`"),
                "declare the key the snapshots are under, or share a copy re-encrypted under the declared key".to_owned(),
            ),
            None => (
                "undeclared-key",
                format!("snapshot `{snapshot_id}` is encrypted under `{found}`, but the image entry declares no key"),
                "declare that key under `keys` and name it in this entry's `key`, so its policy can grant the targets".to_owned(),
            ),
        }
    }

    fn launch(&mut self, group: &ImageGroup, scope: &Scope, image: &ObservedImage) {
        let desired: BTreeSet<LaunchEntry> = group
            .targets
            .iter()
            .map(|t| t.grantee.launch_entry())
            .collect();
        let add: Vec<LaunchEntry> = desired.difference(&image.launch).cloned().collect();
        let extra: Vec<LaunchEntry> = image.launch.difference(&desired).cloned().collect();
        let remove = self.prune_or_report(
            scope,
            &image.image.id,
            "undeclared-launch-permission",
            extra.iter().map(ToString::to_string).collect(),
            extra,
        );
        if add.is_empty() && remove.is_empty() {
            return;
        }
        self.plan
            .changes
            .push(Change::LaunchPermissions(LaunchChange {
                scope: scope.clone(),
                image_id: image.image.id.clone(),
                image_name: image.image.name.clone(),
                key_name: group.key.clone(),
                add,
                remove,
            }));
    }

    fn volumes(
        &mut self,
        group: &ImageGroup,
        scope: &Scope,
        image_id: &str,
        snapshot: &crate::observe::ObservedSnapshot,
    ) {
        let Some(current) = &snapshot.volume_permissions else {
            return;
        };
        let desired: BTreeSet<String> = group
            .targets
            .iter()
            .filter(|t| t.copy)
            .filter_map(|t| match &t.grantee {
                Grantee::Account(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        let add: Vec<String> = desired.difference(current).cloned().collect();
        let extra: Vec<String> = current.difference(&desired).cloned().collect();
        let described = extra
            .iter()
            .map(|a| format!("create volume permission for account {a}"))
            .collect();
        let remove = self.prune_or_report(
            scope,
            &snapshot.snapshot.id,
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
                image_id: image_id.to_owned(),
                snapshot_id: snapshot.snapshot.id.clone(),
                key_name: group.key.clone(),
                add,
                remove,
            }));
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

    fn key(&mut self, name: &str) {
        let Some(key) = self.spec.key(name) else {
            return;
        };
        let scope = Scope::new(&key.account, &key.region);
        let Some(ObservedKey::Found {
            metadata,
            policy: text,
        }) = self.observed.keys.get(name)
        else {
            if let Some(ObservedKey::Unreadable(err)) = self.observed.keys.get(name) {
                self.finding(Severity::Blocked, "key-unreadable", &scope, name, format!("key `{name}` cannot be read: {err}"), Some("check `keys[].key` and that the role may call DescribeKey and GetKeyPolicy"));
            }
            return;
        };
        if metadata.manager == KeyManager::Aws {
            self.finding(
                Severity::Blocked,
                "aws-managed-key",
                &scope,
                &metadata.arn,
                format!("key `{name}` is managed by AWS, so its policy cannot be changed"),
                Some("declare a customer managed key instead"),
            );
            return;
        }
        if !metadata.is_usable() {
            // Each image under it is already blocked; the key itself is left as it is.
            return;
        }
        let current = match Policy::parse(text) {
            Ok(policy) => policy,
            Err(err) => {
                self.finding(Severity::Blocked, "invalid-key-policy", &scope, &metadata.arn, format!("policy of key `{name}` cannot be read: {err}"), Some("fix the key policy by hand; amishare does not rewrite a policy it cannot parse"));
                return;
            }
        };
        let desired = self.grants.remove(name).unwrap_or_default();
        let (target, drop) = self.key_target(&scope, &metadata.arn, &current, desired);
        let after = current.with_managed(&target, &drop);
        if after.same_meaning(&current) {
            return;
        }
        let (added, removed) = member_changes(&current.managed_members(), &target);
        self.plan.changes.push(Change::KeyPolicy(KeyPolicyChange {
            scope,
            key_name: name.to_owned(),
            key_id: metadata.key_id.clone(),
            key_arn: metadata.arn.clone(),
            added,
            removed,
            target,
            drop,
            before: current.to_pretty(),
            after: after.to_pretty(),
        }));
    }

    /// The members each managed statement should have, and the unknown managed statements
    /// to remove. Without pruning, members already granted stay, except orphaned ids.
    fn key_target(
        &mut self,
        scope: &Scope,
        key_arn: &str,
        current: &Policy,
        desired: Members,
    ) -> (Members, BTreeSet<String>) {
        let current_members = current.managed_members();
        let mut target = desired;
        for (sid, members) in &current_members {
            let orphans = policy::orphaned(members);
            for orphan in &orphans {
                self.finding(Severity::Note, "orphaned-principal", scope, key_arn, format!("statement `{sid}` holds `{orphan}`, the unique id of a deleted principal; it is removed"), Some("KMS rejects PutKeyPolicy while a policy holds such an id; if the role was recreated, its new ARN is granted again by the spec"));
            }
            let wanted = target.entry(sid.clone()).or_default();
            let extra: Vec<String> = members
                .difference(wanted)
                .filter(|m| !orphans.contains(*m))
                .cloned()
                .collect();
            if self.spec.settings.prune {
                continue;
            }
            for member in extra {
                self.finding(Severity::Warning, "undeclared-key-grant", scope, key_arn, format!("statement `{sid}` grants `{member}`, which the spec does not declare; kept because pruning is off"), Some("declare it in the spec, or set `settings.prune: true` to remove it"));
                wanted.insert(member);
            }
        }
        let unknown: BTreeSet<String> = current
            .managed()
            .map(|(sid, _)| sid.to_owned())
            .filter(|sid| !current_members.contains_key(sid) && !target.contains_key(sid))
            .collect();
        if !self.spec.settings.prune {
            for sid in &unknown {
                self.finding(Severity::Warning, "undeclared-key-statement", scope, key_arn, format!("statement `{sid}` is owned by amishare but not produced by this spec; kept because pruning is off"), Some("set `settings.prune: true` to remove it"));
            }
            return (target, BTreeSet::new());
        }
        (target, unknown)
    }
}

/// A `(sid, member)` pair of a managed statement.
type MemberEntry = (String, String);

/// The members `target` adds to and removes from `current`.
fn member_changes(current: &Members, target: &Members) -> (Vec<MemberEntry>, Vec<MemberEntry>) {
    let empty = BTreeSet::new();
    let sids: BTreeSet<&String> = current.keys().chain(target.keys()).collect();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for sid in sids {
        let before = current.get(sid).unwrap_or(&empty);
        let after = target.get(sid).unwrap_or(&empty);
        added.extend(after.difference(before).map(|m| (sid.clone(), m.clone())));
        removed.extend(before.difference(after).map(|m| (sid.clone(), m.clone())));
    }
    (added, removed)
}
