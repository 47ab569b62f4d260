//! Planning key policies: which declared keys can be managed, and the rewrite of the
//! `amishare-` statements of each.

use std::collections::{BTreeMap, BTreeSet};

use super::{Blocker, Change, KeyPolicyChange, Planner, Severity};
use crate::model::{KeyManager, KeyMetadata, Scope};
use crate::observe::ObservedKey;
use crate::policy::{self, ManagedState, Members, Policy};

/// A declared key, classified for planning.
pub(super) enum KeyStatus {
    Usable(Box<UsableKey>),
    Blocked(Blocker),
    /// Another declared name resolved to the same key, which is planned under that name.
    SameAs {
        name: String,
    },
}

pub(super) struct UsableKey {
    pub scope: Scope,
    pub metadata: KeyMetadata,
    pub policy: Policy,
    pub state: ManagedState,
}

impl UsableKey {
    pub fn partition(&self) -> &str {
        policy::partition_of(&self.metadata.arn)
    }
}

impl Planner<'_> {
    /// Decides for each declared key whether its statements can be managed.
    pub(super) fn assess_keys(&mut self) {
        let mut by_arn: BTreeMap<String, String> = BTreeMap::new();
        for key in &self.spec.keys {
            let scope = Scope::new(&key.account, &key.region);
            let status = match self.observed.keys.get(&key.name) {
                None => continue,
                Some(ObservedKey::Unreadable(err)) => KeyStatus::Blocked(Blocker::new(
                    "key-unreadable",
                    format!(
                        "key `{}` cannot be read: {}: {}",
                        key.name,
                        err.code.as_deref().unwrap_or("error"),
                        err.message
                    ),
                    "check `keys[].key` and that the account's role may call DescribeKey and GetKeyPolicy",
                )),
                Some(ObservedKey::Found { metadata, policy }) => match by_arn.get(&metadata.arn) {
                    Some(first) => KeyStatus::SameAs {
                        name: first.clone(),
                    },
                    None => {
                        by_arn.insert(metadata.arn.clone(), key.name.clone());
                        assess(&key.name, &scope, metadata, policy)
                    }
                },
            };
            if let KeyStatus::Blocked(blocker) = &status {
                let blocker = Blocker::new(blocker.code, blocker.message.clone(), &blocker.hint);
                self.blocked(&scope, &key.name, blocker);
            }
            self.keys.insert(key.name.clone(), status);
        }
    }

    /// The usable key a declared name resolves to, following [`KeyStatus::SameAs`].
    pub(super) fn usable_key(&self, name: &str) -> Option<&UsableKey> {
        match self.keys.get(name)? {
            KeyStatus::Usable(key) => Some(key),
            KeyStatus::SameAs { name, .. } => self.usable_key(name),
            KeyStatus::Blocked(_) => None,
        }
    }

    /// Plans the statement rewrite of every usable key.
    pub(super) fn key_changes(&mut self) {
        let names: Vec<String> = self.spec.keys.iter().map(|k| k.name.clone()).collect();
        let mut withheld = BTreeSet::new();
        for name in names {
            let Some(KeyStatus::Usable(key)) = self.keys.get(&name) else {
                continue;
            };
            let desired = self
                .grants
                .get(&key.metadata.arn)
                .cloned()
                .unwrap_or_default();
            let change = self.key_change(&name, key, desired);
            let Some(change) = change else { continue };
            let scope = change.change.scope.clone();
            if let Some(lockout) = &change.lockout {
                let message = format!("the policy of key `{name}` is not rewritten: {lockout}");
                self.blocked(&scope, &name, Blocker::new("key-lockout", message, "keep a statement that lets the account root and amishare's role call kms:PutKeyPolicy, with a `Sid` that does not start with `amishare-`"));
                withheld.insert(name);
                continue;
            }
            if change.after_document_fits {
                self.plan.changes.push(Change::KeyPolicy(change.change));
                continue;
            }
            let (total, foreign) = change.after_sizes;
            let message = format!(
                "the policy of key `{name}` would be {total} bytes with the grants the spec declares, over the KMS limit of {} bytes; statements amishare does not own take {foreign} bytes of it",
                policy::MAX_POLICY_BYTES
            );
            self.blocked(&scope, &name, Blocker::new("key-policy-too-large", message, "share with organizations or OUs (one condition value each) instead of many accounts, or shorten the statements amishare does not own"));
            withheld.insert(name);
        }
        // Without the key grant, targets must not get images under that key.
        self.withhold_additions(&withheld);
    }

    /// Drops the additions of launch and create-volume permissions on images under `keys`.
    fn withhold_additions(&mut self, keys: &BTreeSet<String>) {
        if keys.is_empty() {
            return;
        }
        let under = |key: &Option<String>| key.as_ref().is_some_and(|k| keys.contains(k));
        for change in &mut self.plan.changes {
            match change {
                Change::LaunchPermissions(c) if under(&c.key_name) => c.add.clear(),
                Change::VolumePermissions(c) if under(&c.key_name) => c.add.clear(),
                _ => {}
            }
        }
        self.plan.changes.retain(|c| match c {
            Change::LaunchPermissions(c) => !c.add.is_empty() || !c.remove.is_empty(),
            Change::VolumePermissions(c) => !c.add.is_empty() || !c.remove.is_empty(),
            _ => true,
        });
    }

    fn key_change(&self, name: &str, key: &UsableKey, desired: Members) -> Option<SizedChange> {
        let (target, drop) = self.key_target(key, desired);
        let after = key.policy.with_managed(&target, &drop);
        if after.same_meaning(&key.policy) {
            return None;
        }
        let (added, removed) = member_changes(&key.state.members, &target);
        let after_document_fits = after.to_document().is_some();
        let after_sizes = after.compact_sizes();
        let lockout = policy::lockout(
            &key.policy,
            &after,
            &policy::administrators(
                &key.metadata.arn,
                self.observed
                    .callers
                    .get(&key.scope.account)
                    .map(String::as_str),
            ),
            &key.metadata.arn,
        );
        let change = KeyPolicyChange {
            scope: key.scope.clone(),
            key_name: name.to_owned(),
            key_id: key.metadata.key_id.clone(),
            key_arn: key.metadata.arn.clone(),
            added,
            removed,
            drop,
            before: key.policy.to_pretty(),
            after: after.to_pretty(),
        };
        Some(SizedChange {
            change,
            after_document_fits,
            after_sizes,
            lockout,
        })
    }

    /// The members each managed statement should have, and the unknown managed statements
    /// to remove. Without pruning, members already granted stay, except orphaned ids.
    fn key_target(&self, key: &UsableKey, desired: Members) -> (Members, BTreeSet<String>) {
        let prune = self.spec.settings.prune;
        let mut target = desired;
        for (sid, members) in &key.state.members {
            let orphans = policy::orphaned(members);
            let wanted = target.entry(sid.clone()).or_default();
            if !prune {
                wanted.extend(members.iter().filter(|m| !orphans.contains(*m)).cloned());
            }
        }
        let drop = if prune {
            key.state.unknown.clone()
        } else {
            BTreeSet::new()
        };
        (target, drop)
    }

    /// Reports what a key's change does that a reviewer should know: repairs, kept and
    /// removed grants that the spec does not declare.
    pub(super) fn key_findings(&mut self) {
        let prune = self.spec.settings.prune;
        let mut findings = Vec::new();
        for key in &self.spec.keys {
            let Some(KeyStatus::Usable(usable)) = self.keys.get(&key.name) else {
                continue;
            };
            let desired = self
                .grants
                .get(&usable.metadata.arn)
                .cloned()
                .unwrap_or_default();
            let arn = usable.metadata.arn.clone();
            for (sid, members) in &usable.state.members {
                for orphan in policy::orphaned(members) {
                    findings.push((Severity::Note, "orphaned-principal", usable.scope.clone(), arn.clone(), format!("statement `{sid}` holds `{orphan}`, the unique id of a deleted principal; it is removed"), "KMS rejects PutKeyPolicy while a policy holds such an id; a recreated role is granted again under its ARN"));
                }
                let empty = BTreeSet::new();
                let wanted = desired.get(sid).unwrap_or(&empty);
                let orphans = policy::orphaned(members);
                for member in members.difference(wanted).filter(|m| !orphans.contains(*m)) {
                    if prune {
                        continue;
                    }
                    findings.push((Severity::Warning, "undeclared-key-grant", usable.scope.clone(), arn.clone(), format!("statement `{sid}` grants `{member}`, which the spec does not declare; kept because pruning is off"), "declare it in the spec, or set `settings.prune: true` to remove it"));
                }
            }
            for sid in &usable.state.unknown {
                if !prune {
                    findings.push((Severity::Warning, "undeclared-key-statement", usable.scope.clone(), arn.clone(), format!("statement `{sid}` is owned by amishare but not written by this version; kept because pruning is off"), "set `settings.prune: true` to remove it"));
                }
            }
            let used = self.spec.images.iter().any(|g| {
                g.key.as_deref() == Some(key.name.as_str())
                    || g.replicas.iter().any(|r| r.key == key.name)
            });
            if prune && !used && !usable.state.members.is_empty() {
                findings.push((Severity::Warning, "key-without-images", usable.scope.clone(), arn.clone(), format!("no image in the spec uses key `{}`, so pruning removes every grant amishare made on it", key.name), "images shared under this key stop working for their targets; declare them, or turn pruning off"));
            }
        }
        for (severity, code, scope, resource, message, hint) in findings {
            self.finding(severity, code, &scope, &resource, message, Some(hint));
        }
    }
}

/// Decides whether one readable key's statements can be managed.
fn assess(name: &str, scope: &Scope, metadata: &KeyMetadata, text: &str) -> KeyStatus {
    if metadata.manager == KeyManager::Aws {
        return KeyStatus::Blocked(Blocker::new(
            "aws-managed-key",
            format!(
                "key `{name}` ({}) is managed by AWS, so its policy cannot be changed",
                metadata.arn
            ),
            "declare a customer managed key instead",
        ));
    }
    if !metadata.is_usable() {
        return KeyStatus::Blocked(Blocker::new(
            "key-not-usable",
            format!("key `{name}` ({}) is `{}`", metadata.arn, metadata.state),
            "enable the key or cancel its deletion; no target can launch images under it while it is not enabled",
        ));
    }
    let policy = match Policy::parse(text) {
        Ok(policy) => policy,
        Err(err) => {
            return KeyStatus::Blocked(Blocker::new(
                "invalid-key-policy",
                format!("policy of key `{name}` cannot be read: {err}"),
                "fix the key policy by hand; amishare does not rewrite a policy it cannot parse",
            ));
        }
    };
    let orphans = policy.foreign_orphans();
    if !orphans.is_empty() {
        let ids: Vec<String> = orphans.iter().map(|o| format!("`{o}`")).collect();
        return KeyStatus::Blocked(Blocker::new(
            "foreign-orphaned-principal",
            format!(
                "policy of key `{name}` has statements amishare does not own naming {}, the unique ids of deleted principals; KMS rejects every PutKeyPolicy on this key until they are removed",
                ids.join(", ")
            ),
            "remove or replace those principals in the key policy by hand; amishare does not rewrite statements it does not own",
        ));
    }
    let state = policy.managed_state(policy::partition_of(&metadata.arn));
    if !state.malformed.is_empty() {
        let sids: Vec<String> = state.malformed.iter().map(|s| format!("`{s}`")).collect();
        return KeyStatus::Blocked(Blocker::new(
            "unexpected-managed-statement",
            format!(
                "policy of key `{name}` has statement {} in a shape amishare does not write (another effect, a condition, or a repeated Sid)",
                sids.join(", ")
            ),
            "rename the statement so its Sid does not start with `amishare-`, or remove it; amishare then writes its own",
        ));
    }
    KeyStatus::Usable(Box::new(UsableKey {
        scope: scope.clone(),
        metadata: metadata.clone(),
        policy,
        state,
    }))
}

/// A key policy change, and whether the policy it writes fits the KMS size limit.
struct SizedChange {
    change: KeyPolicyChange,
    after_document_fits: bool,
    /// Bytes of the new policy, compact, and of its statements amishare does not own.
    after_sizes: (usize, usize),
    /// The administrator the rewrite would lock out of the key, if any.
    lockout: Option<policy::Lockout>,
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
