//! Planning copies: finding each declared copy by its tags, and starting, awaiting or
//! checking it.

use std::collections::BTreeMap;

use super::{Blocker, Change, CopyChange, Planner, Severity};
use crate::copies::{CopyKey, CopyPurpose, DeclaredCopy};
use crate::model::{
    CopyRequest, Image, KeyManager, Scope, TAG_COPY_OF, TAG_ENTRY, TAG_KEY, TAG_SOURCE_ACCOUNT,
    TAG_SOURCE_IMAGE, TAG_SOURCE_REGION, copy_of,
};
use crate::observe::ObservedImage;

/// Longest AMI name EC2 accepts: 128 characters.
const MAX_IMAGE_NAME: usize = 128;

impl Planner<'_> {
    /// Plans one declared copy of `original` (copied from `source`, which is the original
    /// or its re-encrypted copy). Returns the copy when it is available and checked, so
    /// its shares can be planned.
    pub(super) fn copy(
        &mut self,
        declared: &DeclaredCopy<'_>,
        original: (&Scope, &Image),
        source: (&Scope, &Image),
    ) -> Option<ObservedImage> {
        let observed = self.observed;
        let (key_arn, key_name) = self.copy_key(declared, &original.1.id)?;
        let copy_of = copy_of(original.0, &original.1.id);
        let found: Vec<&ObservedImage> = observed
            .copies
            .get(&declared.dest)
            .map(|copies| {
                copies
                    .iter()
                    .filter(|c| {
                        c.image.tag(TAG_COPY_OF) == Some(copy_of.as_str())
                            && c.image.tag(TAG_KEY) == Some(key_arn.as_str())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let by_state = |state: &str| found.iter().find(|c| c.image.state == state).copied();
        if let Some(copy) = by_state("available") {
            return self.checked_copy(declared, copy, &key_arn);
        }
        let pending = by_state("pending").map(|c| c.image.id.clone());
        if pending.is_none()
            && let Some(failed) = found.first()
        {
            let reason = failed
                .image
                .state_reason
                .clone()
                .unwrap_or_else(|| "no reason given".to_owned());
            let message = format!(
                "copy `{}` of `{}` is `{}`: {reason}",
                failed.image.id, original.1.id, failed.image.state
            );
            self.blocked(
                &declared.dest,
                &failed.image.id,
                Blocker::new(
                    "copy-failed",
                    message,
                    "deregister the failed image; the next apply makes a new copy",
                ),
            );
            return None;
        }
        if let (CopyPurpose::TargetKey { .. } | CopyPurpose::KeptByTarget { .. }, None) =
            (&declared.purpose, &pending)
        {
            let message = format!(
                "the copy is made by account `{}` under `{key_arn}`, so that key's policy must let account `{}` use it (kms:CreateGrant, kms:Decrypt, kms:DescribeKey, kms:GenerateDataKeyWithoutPlaintext, kms:ReEncrypt*)",
                declared.dest.account, declared.dest.account
            );
            self.finding(Severity::Note, "target-key-policy", &declared.dest, &original.1.id, message, Some("the key's owner grants this in its key policy; amishare does not change keys of accounts it only shares with"));
        }
        let request = CopyRequest {
            source: source.0.clone(),
            source_image: source.1.id.clone(),
            name: copy_name(
                &declared.group.copy_name,
                original.1,
                &declared.dest.region,
                key_name.as_deref().unwrap_or(key_id_of(&key_arn)),
            ),
            key_arn: key_arn.clone(),
            tags: vec![
                (TAG_COPY_OF.to_owned(), copy_of),
                (TAG_KEY.to_owned(), key_arn.clone()),
                (TAG_ENTRY.to_owned(), declared.group.origin.clone()),
                (TAG_SOURCE_ACCOUNT.to_owned(), original.0.account.clone()),
                (TAG_SOURCE_REGION.to_owned(), original.0.region.clone()),
                (TAG_SOURCE_IMAGE.to_owned(), original.1.id.clone()),
            ],
            client_token: client_token(&source.1.id, &key_arn, self.started),
        };
        self.plan.changes.push(Change::Copy(CopyChange {
            scope: declared.dest.clone(),
            purpose: declared.purpose.clone(),
            request,
            key_name,
            pending_image: pending,
            shares: declared
                .targets
                .iter()
                .map(|t| t.grantee.launch_entry())
                .collect(),
        }));
        None
    }

    /// Blocks copies that would get the same name in one account and region: EC2 rejects
    /// the second CopyImage with `InvalidAMIName.Duplicate`. A name already taken by a copy
    /// amishare made of another image counts too. Other images are not read, so a clash
    /// with one of them shows only when CopyImage fails.
    pub(super) fn copy_names(&mut self) {
        let mut by_name: BTreeMap<(Scope, String), Vec<String>> = BTreeMap::new();
        for change in &self.plan.changes {
            if let Change::Copy(copy) = change
                && copy.pending_image.is_none()
            {
                by_name
                    .entry((copy.scope.clone(), copy.request.name.clone()))
                    .or_default()
                    .push(copy.request.source_image.clone());
            }
        }
        for (scope, copies) in &self.observed.copies {
            for copy in copies {
                if let Some(name) = &copy.image.name
                    && let Some(sources) = by_name.get_mut(&(scope.clone(), name.clone()))
                {
                    sources.push(copy.image.id.clone());
                }
            }
        }
        let clashes: BTreeMap<(Scope, String), Vec<String>> = by_name
            .into_iter()
            .filter(|(_, images)| images.len() > 1)
            .collect();
        if clashes.is_empty() {
            return;
        }
        for ((scope, name), images) in &clashes {
            let listed: Vec<String> = images.iter().map(|id| format!("`{id}`")).collect();
            let message = format!(
                "copies of {} would all be named `{name}` in this account and region, and AMI names must be unique there",
                listed.join(" and ")
            );
            self.blocked(scope, name, Blocker::new("copy-name-conflict", message, "set `copy_name` on the image entries to a pattern that tells them apart, such as `{name}-{id}`, since `{region}` is the region of the copy"));
        }
        self.plan.changes.retain(|change| match change {
            Change::Copy(copy) => {
                copy.pending_image.is_some()
                    || !clashes.contains_key(&(copy.scope.clone(), copy.request.name.clone()))
            }
            _ => true,
        });
    }

    /// The ARN and, for a declared key, the name of the key a copy goes under; `None`
    /// when the key cannot be used, with a finding saying why.
    fn copy_key(
        &mut self,
        declared: &DeclaredCopy<'_>,
        image_id: &str,
    ) -> Option<(String, Option<String>)> {
        match &declared.key {
            CopyKey::Declared(name) => match self.usable_key(name) {
                Some(key) => Some((key.metadata.arn.clone(), Some(name.clone()))),
                None => {
                    let blocker = Blocker::new(
                        "key-blocked",
                        format!("the copy's key `{name}` cannot be managed; see its own finding"),
                        "fix the key first; the copy is made once its key can be used",
                    );
                    self.blocked(&declared.dest, image_id, blocker);
                    None
                }
            },
            CopyKey::Arn(arn) => {
                match self.observed.snapshot_keys.get(arn) {
                    Some(Ok(metadata))
                        if metadata.manager == KeyManager::Aws || !metadata.is_usable() =>
                    {
                        let message = format!(
                            "target key `{arn}` is `{}` and managed by {:?}; a copy needs an enabled customer managed key",
                            metadata.state, metadata.manager
                        );
                        self.blocked(
                            &declared.dest,
                            image_id,
                            Blocker::new(
                                "target-key-not-usable",
                                message,
                                "name an enabled customer managed key of the target account",
                            ),
                        );
                        return None;
                    }
                    Some(Ok(_)) => {}
                    _ => {
                        let message = format!(
                            "target key `{arn}` cannot be read from account `{}`, so its state is not checked",
                            declared.dest.account
                        );
                        self.finding(Severity::Note, "target-key-unreadable", &declared.dest, image_id, message, Some("the copy fails if the key is not enabled or its policy does not let this account use it"));
                    }
                }
                Some((arn.clone(), None))
            }
        }
    }

    /// Checks that every snapshot of an available copy is under the requested key.
    fn checked_copy(
        &mut self,
        declared: &DeclaredCopy<'_>,
        copy: &ObservedImage,
        key_arn: &str,
    ) -> Option<ObservedImage> {
        for snapshot in &copy.snapshots {
            let found = snapshot
                .snapshot
                .kms_key_id
                .as_deref()
                .filter(|_| snapshot.snapshot.encrypted);
            if found != Some(key_arn) {
                let message = format!(
                    "snapshot `{}` of copy `{}` is under `{}`, not under the requested key `{key_arn}`",
                    snapshot.snapshot.id,
                    copy.image.id,
                    found.unwrap_or("no key (unencrypted)")
                );
                self.blocked(&declared.dest, &copy.image.id, Blocker::new("copy-wrong-key", message, "deregister the copy; the next apply makes a new one under the requested key"));
                return None;
            }
        }
        Some(copy.clone())
    }
}

/// Returns the key id at the end of a key ARN.
fn key_id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Fills the spec's template into the name of a copy, in the characters EC2 accepts in AMI
/// names (letters, digits, `()[] ./-'@_`), at most [`MAX_IMAGE_NAME`] long.
fn copy_name(template: &str, source: &Image, region: &str, key: &str) -> String {
    let name = source.name.as_deref().unwrap_or(&source.id);
    let filled = template
        .replace("{name}", name)
        .replace("{id}", &source.id)
        .replace("{region}", region)
        .replace("{key}", key);
    let allowed = |c: char| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c);
    let name: String = filled
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .collect();
    if name.len() <= MAX_IMAGE_NAME {
        return name;
    }
    // Cut from the middle and end with the source id, so two long names stay distinct.
    let suffix = format!("-{}", source.id);
    let keep = MAX_IMAGE_NAME.saturating_sub(suffix.len());
    format!("{}{suffix}", &name[..keep])
}

/// CopyImage's idempotency token (at most 64 ASCII characters): the same within one
/// plan, so a retried request cannot start a second copy, and new for each plan, so a
/// copy that was deregistered after failing is made again.
fn client_token(source_image: &str, key_arn: &str, started: u64) -> String {
    let key: String = key_id_of(key_arn).chars().take(8).collect();
    let token = format!("{source_image}-{key}-{started}");
    token.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(name: Option<&str>) -> Image {
        Image {
            id: "ami-0123456789abcdef0".into(),
            name: name.map(str::to_owned),
            state: "available".into(),
            owner: "111111111111".into(),
            snapshot_ids: vec![],
            state_reason: None,
            tags: vec![],
            creation_date: None,
            deprecation_time: None,
        }
    }

    #[test]
    fn copy_names_fill_and_sanitise() {
        assert_eq!(
            copy_name("{name}-{key}", &image(Some("base")), "eu-west-1", "golden"),
            "base-golden"
        );
        assert_eq!(
            copy_name("{id}@{region}", &image(None), "eu-west-1", "k"),
            "ami-0123456789abcdef0@eu-west-1"
        );
        assert_eq!(
            copy_name("{name}", &image(Some("a:b*c")), "r", "k"),
            "a-b-c"
        );
        let long = copy_name("{name}", &image(Some(&"x".repeat(300))), "r", "k");
        assert_eq!(long.len(), MAX_IMAGE_NAME);
        assert!(long.ends_with("-ami-0123456789abcdef0"), "{long}");
    }

    #[test]
    fn client_tokens_fit_and_differ_per_plan() {
        let arn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let first = client_token("ami-0123456789abcdef0", arn, 1_764_000_000);
        assert!(first.len() <= 64);
        assert!(first.is_ascii());
        assert_ne!(
            first,
            client_token("ami-0123456789abcdef0", arn, 1_764_000_001)
        );
    }
}
