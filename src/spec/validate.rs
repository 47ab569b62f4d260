//! Turns raw spec files into one resolved [`Spec`], collecting every problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::diagnostic::Diagnostic;
use super::ids::{self, KeyForm};
use super::raw::{RawAccount, RawImage, RawKey, RawReplica, RawShare, RawSpec};
use super::{
    Account, AssumeRole, DEFAULT_COPY_NAME, Grantee, ImageGroup, Key, Replica, Selector, Settings,
    Spec, Target,
};

const VERSION: u32 = 1;

pub(super) fn validate(files: &[(PathBuf, RawSpec)]) -> Result<Spec, Vec<Diagnostic>> {
    let mut v = Validator::default();
    for (file, raw) in files {
        v.check_version(file, raw.version);
        v.settings(file, raw);
    }
    for (file, raw) in files {
        for (i, account) in raw.accounts.iter().enumerate() {
            v.account(file, &format!("accounts[{i}]"), account);
        }
    }
    for (file, raw) in files {
        for (i, key) in raw.keys.iter().enumerate() {
            v.key(file, &format!("keys[{i}]"), key);
        }
    }
    for (file, raw) in files {
        for (i, image) in raw.images.iter().enumerate() {
            v.image(file, &format!("images[{i}]"), image);
        }
    }
    if v.problems.is_empty() {
        Ok(v.finish())
    } else {
        Err(v.problems)
    }
}

/// Where a declaration was made, for "declared twice" messages.
#[derive(Clone)]
struct Origin {
    file: PathBuf,
    path: String,
}

impl Origin {
    fn describe(&self) -> String {
        format!("{}: {}", self.file.display(), self.path)
    }
}

#[derive(Default)]
struct Validator {
    problems: Vec<Diagnostic>,
    settings: Option<(Settings, PathBuf)>,
    accounts: Vec<(Account, Origin)>,
    keys: Vec<(Key, Origin)>,
    images: Vec<ImageGroup>,
    /// (account, region, image id) to where it was first selected.
    selected: BTreeMap<(String, String, String), Origin>,
    /// Names of accounts declared with an invalid id: references to them are not
    /// reported again.
    broken_accounts: Vec<String>,
}

impl Validator {
    fn problem(
        &mut self,
        code: &'static str,
        file: &Path,
        path: &str,
        message: String,
    ) -> &mut Diagnostic {
        self.problems
            .push(Diagnostic::new(code, file, path, message));
        // Just pushed, so the vector is not empty.
        let last = self.problems.len() - 1;
        &mut self.problems[last]
    }

    fn hinted(&mut self, code: &'static str, file: &Path, path: &str, message: String, hint: &str) {
        self.problem(code, file, path, message).hint = Some(hint.to_owned());
    }

    fn finish(self) -> Spec {
        Spec {
            settings: self.settings.map(|(s, _)| s).unwrap_or_default(),
            accounts: self.accounts.into_iter().map(|(a, _)| a).collect(),
            keys: self.keys.into_iter().map(|(k, _)| k).collect(),
            images: self.images,
        }
    }

    fn check_version(&mut self, file: &Path, version: u32) {
        if version != VERSION {
            self.hinted(
                "unsupported-version",
                file,
                "version",
                format!("unsupported spec version `{version}`"),
                "set `version: 1`, the only version this amishare reads",
            );
        }
    }

    fn settings(&mut self, file: &Path, raw: &RawSpec) {
        let Some(settings) = &raw.settings else {
            return;
        };
        let resolved = Settings {
            prune: settings.prune.unwrap_or(false),
            allow_public: settings.allow_public.unwrap_or(false),
        };
        match &self.settings {
            None => self.settings = Some((resolved, file.to_path_buf())),
            Some((first, first_file)) if *first != resolved => {
                let message = format!("settings differ from those in `{}`", first_file.display());
                self.hinted(
                    "conflicting-settings",
                    file,
                    "settings",
                    message,
                    "declare `settings` in one file only, or make them equal",
                );
            }
            Some(_) => {}
        }
    }

    fn account(&mut self, file: &Path, path: &str, raw: &RawAccount) {
        let origin = Origin {
            file: file.to_path_buf(),
            path: path.to_owned(),
        };
        let mut ok = true;
        if let Err(reason) = ids::check_account_id(&raw.id) {
            ok = false;
            self.hinted(
                "invalid-account-id",
                file,
                &format!("{path}.id"),
                format!("invalid account id `{}`: {reason}", raw.id),
                "write the id's 12 digits, leading zeros included, in quotes such as \
                 \"012345678901\"",
            );
        }
        if !self.name(file, &format!("{path}.name"), &raw.name) {
            ok = false;
        }
        let role = raw.role_arn.as_ref().map(|arn| AssumeRole {
            arn: arn.clone(),
            external_id: raw.external_id.clone(),
        });
        if let Some(arn) = &raw.role_arn {
            match ids::parse_role_arn(arn) {
                Ok(role_account) if role_account != raw.id && ok => {
                    self.hinted(
                        "role-in-other-account",
                        file,
                        &format!("{path}.role_arn"),
                        format!(
                            "role `{arn}` is in account `{role_account}`, not `{}`",
                            raw.id
                        ),
                        "name a role in the account itself; assuming it is how amishare acts \
                         in that account",
                    );
                }
                Ok(_) => {}
                Err(reason) => {
                    self.hinted(
                        "invalid-role-arn",
                        file,
                        &format!("{path}.role_arn"),
                        format!("invalid role ARN `{arn}`: {reason}"),
                        "copy the role's ARN from IAM, such as \
                         `arn:aws:iam::012345678901:role/amishare`",
                    );
                }
            }
        } else if raw.external_id.is_some() {
            self.hinted(
                "external-id-without-role",
                file,
                &format!("{path}.external_id"),
                "`external_id` is set but `role_arn` is not".into(),
                "add the role to assume, or remove `external_id`",
            );
        }
        for (other, other_origin) in &self.accounts {
            if other.name == raw.name {
                let message = format!(
                    "account name `{}` is already declared at {}",
                    raw.name,
                    other_origin.describe()
                );
                self.hinted(
                    "duplicate-account",
                    file,
                    &format!("{path}.name"),
                    message,
                    "give each account one unique name",
                );
                return;
            }
            if other.id == raw.id {
                let message = format!(
                    "account id `{}` is already declared as `{}` at {}",
                    raw.id,
                    other.name,
                    other_origin.describe()
                );
                self.hinted(
                    "duplicate-account",
                    file,
                    &format!("{path}.id"),
                    message,
                    "declare each account once and refer to it by one name",
                );
                return;
            }
        }
        if ok {
            let account = Account {
                name: raw.name.clone(),
                id: raw.id.clone(),
                role,
            };
            self.accounts.push((account, origin));
        } else {
            // The account is reported already; references to its name are not reported again.
            self.broken_accounts.push(raw.name.clone());
        }
    }

    fn name(&mut self, file: &Path, path: &str, value: &str) -> bool {
        match ids::check_name(value) {
            Ok(()) => true,
            Err(reason) => {
                self.hinted(
                    "invalid-name",
                    file,
                    path,
                    format!("invalid name `{value}`: {reason}"),
                    "use a short logical name such as `prod`",
                );
                false
            }
        }
    }

    /// Checks that an ARN is in the partition of the region it is used in.
    fn partition(&mut self, file: &Path, path: &str, arn: &str, region: &str) -> bool {
        let expected = ids::partition_of_region(region);
        let found = arn.split(':').nth(1).unwrap_or_default();
        if found == expected {
            return true;
        }
        let message =
            format!("`{arn}` is in partition `{found}`, but region `{region}` is in `{expected}`");
        self.hinted("partition-mismatch", file, path, message, &format!("write the ARN as `arn:{expected}:...`; each partition has its own accounts and organizations"));
        false
    }

    /// Checks that the role assumed in `account` is in the partition of `region`.
    fn role_partition(&mut self, file: &Path, path: &str, account: &str, region: &str) {
        let Some((declared, origin)) = self.accounts.iter().find(|(a, _)| a.id == account) else {
            return;
        };
        let Some(role) = &declared.role else {
            return;
        };
        let expected = ids::partition_of_region(region);
        let found = role.arn.split(':').nth(1).unwrap_or_default();
        if found == expected {
            return;
        }
        let message = format!(
            "region `{region}` is in partition `{expected}`, but account `{}` is reached \
             through role `{}` in `{found}` ({}.role_arn)",
            declared.name,
            role.arn,
            origin.describe()
        );
        let hint = format!(
            "use a region of `{found}`, or give the account a role ARN that starts \
             `arn:{expected}:`; each partition has its own accounts"
        );
        self.hinted("partition-mismatch", file, path, message, &hint);
    }

    /// Resolves a reference to a declared account (by name or id) to its id.
    fn declared_account(&self, value: &str) -> Option<String> {
        self.accounts
            .iter()
            .find(|(a, _)| a.name == value || a.id == value)
            .map(|(a, _)| a.id.clone())
    }

    fn owner_account(&mut self, file: &Path, path: &str, value: &str) -> Option<String> {
        let found = self.declared_account(value);
        if found.is_none() && !self.broken_accounts.iter().any(|name| name == value) {
            let names: Vec<_> = self
                .accounts
                .iter()
                .map(|(a, _)| format!("`{}`", a.name))
                .collect();
            let known = if names.is_empty() {
                "none are declared".to_owned()
            } else {
                names.join(", ")
            };
            self.hinted(
                "unknown-account",
                file,
                path,
                format!("account `{value}` is not declared under `accounts` ({known})"),
                "declare the account under `accounts`, with a role to assume if needed",
            );
        }
        found
    }

    fn region(&mut self, file: &Path, path: &str, value: &str) -> bool {
        match ids::check_region(value) {
            Ok(()) => true,
            Err(reason) => {
                self.hinted(
                    "invalid-region",
                    file,
                    path,
                    format!("invalid region `{value}`: {reason}"),
                    "use the region code, such as `us-east-1`",
                );
                false
            }
        }
    }

    fn key(&mut self, file: &Path, path: &str, raw: &RawKey) {
        let name_ok = self.name(file, &format!("{path}.name"), &raw.name);
        let account = self.owner_account(file, &format!("{path}.account"), &raw.account);
        let region_ok = self.region(file, &format!("{path}.region"), &raw.region);
        let reference_path = format!("{path}.key");
        let form = match ids::parse_key_reference(&raw.key) {
            Ok(form) => Some(form),
            Err(reason) => {
                self.hinted(
                    "invalid-key",
                    file,
                    &reference_path,
                    format!("invalid key `{}`: {reason}", raw.key),
                    "name the key by alias, key id or ARN",
                );
                None
            }
        };
        if raw.key.starts_with("alias/aws/") || raw.key.contains(":alias/aws/") {
            self.hinted(
                "aws-managed-key",
                file,
                &reference_path,
                format!(
                    "`{}` is an AWS managed key, whose policy cannot be changed",
                    raw.key
                ),
                "declare a customer managed key; images under an AWS managed key can only be \
                 shared through a re-encrypted copy",
            );
        }
        if let (
            Some(KeyForm::Arn {
                region,
                account: arn_account,
            }),
            Some(account),
        ) = (&form, &account)
            && (region != &raw.region || arn_account != account)
        {
            let message = format!(
                "key ARN `{}` names account `{arn_account}` in `{region}`, but the key is declared in account `{account}` in `{}`",
                raw.key, raw.region
            );
            self.hinted(
                "key-location-mismatch",
                file,
                &reference_path,
                message,
                "make `account` and `region` match the ARN",
            );
        }
        if let (Some(KeyForm::Arn { .. }), true) = (&form, region_ok) {
            self.partition(file, &reference_path, &raw.key, &raw.region);
        }
        if let (Some(account), true) = (&account, region_ok) {
            self.role_partition(file, &format!("{path}.region"), account, &raw.region);
        }
        if let Some((_, first)) = self.keys.iter().find(|(k, _)| k.name == raw.name) {
            let message = format!(
                "key name `{}` is already declared at {}",
                raw.name,
                first.describe()
            );
            self.hinted(
                "duplicate-key",
                file,
                &format!("{path}.name"),
                message,
                "give each key one unique name",
            );
            return;
        }
        if let (Some(account), true, true, Some(_)) = (account, region_ok, name_ok, form) {
            let key = Key {
                name: raw.name.clone(),
                account,
                region: raw.region.clone(),
                reference: raw.key.clone(),
            };
            let origin = Origin {
                file: file.to_path_buf(),
                path: path.to_owned(),
            };
            self.keys.push((key, origin));
        }
    }

    fn image(&mut self, file: &Path, path: &str, raw: &RawImage) {
        let account = self.owner_account(file, &format!("{path}.account"), &raw.account);
        let region_ok = self.region(file, &format!("{path}.region"), &raw.region);
        let selector = self.selector(file, path, raw);
        if let (Some(account), true) = (&account, region_ok) {
            self.role_partition(file, &format!("{path}.region"), account, &raw.region);
        }
        for (i, id) in raw.ids.iter().enumerate() {
            let id_path = format!("{path}.ids[{i}]");
            if let Err(reason) = ids::check_image_id(id) {
                self.hinted("invalid-image-id", file, &id_path, format!("invalid image id `{id}`: {reason}"), "copy the id from DescribeImages or the console, such as `ami-0123456789abcdef0`");
                continue;
            }
            let Some(account) = &account else { continue };
            let selection = (account.clone(), raw.region.clone(), id.clone());
            let origin = Origin {
                file: file.to_path_buf(),
                path: id_path.clone(),
            };
            if let Some(first) = self.selected.get(&selection) {
                let message = format!("image `{id}` is already selected at {}", first.describe());
                self.hinted(
                    "duplicate-image",
                    file,
                    &id_path,
                    message,
                    "select each image in one entry and list all its targets there",
                );
            } else {
                self.selected.insert(selection, origin);
            }
        }
        if let Some(key_name) = &raw.key {
            self.image_key(file, path, key_name, &raw.region);
        }
        if raw.reencrypt && raw.key.is_none() {
            self.hinted(
                "reencrypt-needs-key",
                file,
                &format!("{path}.reencrypt"),
                "`reencrypt: true` is set but `key` is not".into(),
                "name the customer managed key the copies are encrypted under in `key`",
            );
        }
        let copy_name = raw
            .copy_name
            .clone()
            .unwrap_or_else(|| DEFAULT_COPY_NAME.to_owned());
        self.copy_name(file, &format!("{path}.copy_name"), &copy_name);
        let replicas = self.replicas(file, path, &raw.replicas, &raw.region);
        let targets = self.targets(file, path, raw, account.as_deref());
        if let (Some(account), true) = (account, region_ok) {
            self.images.push(ImageGroup {
                origin: format!("{}: {path}", file.display()),
                account,
                region: raw.region.clone(),
                image_ids: raw.ids.clone(),
                selector,
                key: raw.key.clone(),
                reencrypt: raw.reencrypt,
                copy_name,
                replicas,
                targets,
            });
        }
    }

    fn selector(&mut self, file: &Path, path: &str, raw: &RawImage) -> Option<Selector> {
        let Some(select) = &raw.select else {
            if raw.ids.is_empty() {
                self.hinted("no-images", file, &format!("{path}.ids"), "no images are selected".into(), "list `ami-...` ids under `ids`, or select images by name or tags under `select`");
            }
            return None;
        };
        let select_path = format!("{path}.select");
        if !raw.ids.is_empty() {
            self.hinted(
                "ids-and-select",
                file,
                &select_path,
                "both `ids` and `select` are set".into(),
                "use one entry with `ids` and another with `select`",
            );
        }
        if select.name.is_none() && select.tags.is_empty() {
            self.hinted(
                "empty-select",
                file,
                &select_path,
                "`select` has neither `name` nor `tags`".into(),
                "select by a name pattern such as `golden-*`, or by tags",
            );
        }
        if select.newest == Some(0) {
            self.hinted(
                "invalid-newest",
                file,
                &format!("{select_path}.newest"),
                "`newest: 0` selects nothing".into(),
                "give a count of at least 1, or leave `newest` out for every match",
            );
        }
        Some(Selector {
            name: select.name.clone(),
            tags: select
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            newest: select.newest,
            must_match: select.must_match,
        })
    }

    fn copy_name(&mut self, file: &Path, path: &str, template: &str) {
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            let Some(end) = rest[start..].find('}') else {
                break;
            };
            let placeholder = &rest[start..start + end + 1];
            if !["{name}", "{id}", "{region}", "{key}"].contains(&placeholder) {
                self.hinted(
                    "invalid-copy-name",
                    file,
                    path,
                    format!("unknown placeholder `{placeholder}` in copy name `{template}`"),
                    "use `{name}`, `{id}`, `{region}` and `{key}`",
                );
            }
            rest = &rest[start + end + 1..];
        }
        if !template.contains("{name}") && !template.contains("{id}") {
            self.hinted(
                "invalid-copy-name",
                file,
                path,
                format!("copy name `{template}` has neither `{{name}}` nor `{{id}}`"),
                "AMI names are unique per account and region, so copies of different images need the source's name or id in theirs",
            );
        }
        if template.trim().is_empty() {
            self.hinted(
                "invalid-copy-name",
                file,
                path,
                "copy name is empty".into(),
                "leave `copy_name` out for the default `{name}-{key}`",
            );
        }
    }

    fn replicas(
        &mut self,
        file: &Path,
        path: &str,
        raw: &[RawReplica],
        image_region: &str,
    ) -> Vec<Replica> {
        let mut replicas: Vec<Replica> = Vec::new();
        for (i, replica) in raw.iter().enumerate() {
            let replica_path = format!("{path}.replicas[{i}]");
            if !self.region(file, &format!("{replica_path}.region"), &replica.region) {
                continue;
            }
            if replica.region == image_region {
                self.hinted(
                    "replica-in-own-region",
                    file,
                    &format!("{replica_path}.region"),
                    format!("the images are in `{}` already", replica.region),
                    "name another region, or use `reencrypt` for a copy in this region",
                );
                continue;
            }
            if replicas.iter().any(|r| r.region == replica.region) {
                self.hinted(
                    "duplicate-replica",
                    file,
                    &format!("{replica_path}.region"),
                    format!("region `{}` is listed twice", replica.region),
                    "list each replica region once",
                );
                continue;
            }
            self.image_key(file, &replica_path, &replica.key, &replica.region);
            replicas.push(Replica {
                region: replica.region.clone(),
                key: replica.key.clone(),
            });
        }
        replicas
    }

    /// Checks a key ARN of the target's own key, as `copy_under` and `keep_copy_under`
    /// require: a key ARN in the target account and the images' region.
    fn target_key(
        &mut self,
        file: &Path,
        path: &str,
        value: &str,
        target: &str,
        region: &str,
    ) -> bool {
        let expected = format!("arn:aws:kms:{region}:{target}:key/KEY_ID");
        match ids::parse_key_reference(value) {
            Ok(KeyForm::Arn { .. }) if !self.partition(file, path, value, region) => false,
            Ok(KeyForm::Arn {
                region: arn_region,
                account,
            }) if value.contains(":key/") => {
                if account != target || arn_region != region {
                    self.hinted(
                        "target-key-mismatch",
                        file,
                        path,
                        format!("key `{value}` is not a key of account `{target}` in `{region}`"),
                        &format!("name a key the target owns in the images' region: `{expected}`"),
                    );
                    return false;
                }
                true
            }
            Err(reason) if value.starts_with("arn:") => {
                self.hinted(
                    "invalid-key-arn",
                    file,
                    path,
                    format!("invalid key ARN `{value}`: {reason}"),
                    &format!("copy the key's ARN from KMS, such as `{expected}`"),
                );
                false
            }
            _ => {
                self.hinted("key-arn-required", file, path, format!("`{value}` is not a key ARN"), &format!("a key of another account is named by its key ARN, such as `{expected}`; aliases and key ids only work within their own account"));
                false
            }
        }
    }

    fn image_key(&mut self, file: &Path, path: &str, key_name: &str, region: &str) {
        let key_path = format!("{path}.key");
        match self.keys.iter().find(|(k, _)| k.name == key_name) {
            None if ids::parse_key_reference(key_name).is_ok() => {
                self.key_reference_for_name(file, &key_path, key_name);
            }
            None => {
                let names: Vec<_> = self
                    .keys
                    .iter()
                    .map(|(k, _)| format!("`{}`", k.name))
                    .collect();
                let known = if names.is_empty() {
                    "none are declared".to_owned()
                } else {
                    names.join(", ")
                };
                self.hinted(
                    "unknown-key",
                    file,
                    &key_path,
                    format!("key `{key_name}` is not declared under `keys` ({known})"),
                    "declare the key under `keys` and refer to it by its name",
                );
            }
            Some((key, _)) if key.region != region => {
                let message = format!(
                    "key `{key_name}` is in `{}`, but these images are in `{region}`",
                    key.region
                );
                self.hinted(
                    "key-region-mismatch",
                    file,
                    &key_path,
                    message,
                    "EBS snapshots use a key in their own region; declare a key in this region",
                );
            }
            Some(_) => {}
        }
    }

    /// Reports a KMS key reference (alias, key id or ARN) written where the spec takes the
    /// logical name of a declared key, suggesting the declared key it matches.
    fn key_reference_for_name(&mut self, file: &Path, path: &str, value: &str) {
        let message = format!(
            "`{value}` is a KMS key reference, but this field takes the name of a key declared \
             under `keys`"
        );
        let declared = self
            .keys
            .iter()
            .find(|(k, _)| ids::same_key(&k.reference, &k.account, &k.region, value))
            .map(|(k, origin)| (k.name.clone(), origin.describe()));
        let hint = match declared {
            Some((name, origin)) => {
                format!("write `key: {name}`, the name this key is declared under at {origin}")
            }
            None => format!(
                "declare the key under `keys` with a `name`, its `account`, its `region` and \
                 `key: {value}`, then write that name here"
            ),
        };
        self.hinted("key-name-required", file, path, message, &hint);
    }

    fn targets(
        &mut self,
        file: &Path,
        path: &str,
        raw: &RawImage,
        owner: Option<&str>,
    ) -> Vec<Target> {
        let mut targets: Vec<Target> = Vec::new();
        for (i, share) in raw.share_with.iter().enumerate() {
            let share_path = format!("{path}.share_with[{i}]");
            let Some(target) = self.target(file, &share_path, share, owner, &raw.region) else {
                continue;
            };
            if targets.iter().any(|t| t.grantee == target.grantee) {
                self.hinted(
                    "duplicate-target",
                    file,
                    &share_path,
                    format!("{} is listed twice", describe(&target.grantee)),
                    "list each target once; set `copy` on that entry if needed",
                );
                continue;
            }
            targets.push(target);
        }
        targets
    }

    fn target(
        &mut self,
        file: &Path,
        path: &str,
        share: &RawShare,
        owner: Option<&str>,
        region: &str,
    ) -> Option<Target> {
        let given = [
            share.account.is_some(),
            share.organization.is_some(),
            share.ou.is_some(),
            share.group.is_some(),
        ];
        match given.iter().filter(|g| **g).count() {
            0 => {
                self.hinted(
                    "empty-target",
                    file,
                    path,
                    "share entry names no principal".into(),
                    "set one of `account`, `organization`, `ou` or `group`",
                );
                return None;
            }
            1 => {}
            _ => {
                self.hinted(
                    "ambiguous-target",
                    file,
                    path,
                    "share entry names more than one principal".into(),
                    "split it into one entry per principal",
                );
                return None;
            }
        }
        let grantee = if let Some(account) = &share.account {
            self.account_grantee(file, &format!("{path}.account"), account, owner)?
        } else if let Some(arn) = &share.organization {
            match ids::parse_organization_arn(arn) {
                Ok(_) if !self.partition(file, &format!("{path}.organization"), arn, region) => {
                    return None;
                }
                Ok(id) => Grantee::Organization {
                    arn: arn.clone(),
                    id,
                },
                Err(reason) => {
                    self.hinted(
                        "invalid-organization-arn",
                        file,
                        &format!("{path}.organization"),
                        format!("invalid organization ARN `{arn}`: {reason}"),
                        "copy the ARN from `aws organizations describe-organization`",
                    );
                    return None;
                }
            }
        } else if let Some(arn) = &share.ou {
            match ids::parse_ou_arn(arn) {
                Ok(_) if !self.partition(file, &format!("{path}.ou"), arn, region) => return None,
                Ok(parts) => Grantee::OrganizationalUnit {
                    arn: arn.clone(),
                    // aws:PrincipalOrgPaths values run `o-ORG/r-ROOT/ou-.../ou-.../`. The
                    // first `*` stands for the root and any OUs above this one, the second
                    // for any below it, so members of nested OUs match too. The root id is
                    // not taken from the OU id, which does not always contain it.
                    org_path: format!("{}/*/{}/*", parts.organization_id, parts.ou_id),
                },
                Err(reason) => {
                    self.hinted(
                        "invalid-ou-arn",
                        file,
                        &format!("{path}.ou"),
                        format!("invalid OU ARN `{arn}`: {reason}"),
                        "copy the ARN from `aws organizations describe-organizational-unit`",
                    );
                    return None;
                }
            }
        } else {
            self.public_grantee(
                file,
                &format!("{path}.group"),
                share.group.as_deref().unwrap_or_default(),
            )?
        };
        if share.copy && !matches!(grantee, Grantee::Account(_)) {
            self.hinted(
                "copy-needs-account",
                file,
                &format!("{path}.copy"),
                format!("`copy: true` is set for {}", describe(&grantee)),
                "createVolumePermission takes account ids only; list each account that needs \
                 to copy the image as its own `account` entry with `copy: true`",
            );
            return None;
        }
        let copy_keys = self.copy_keys(file, path, share, &grantee, region)?;
        Some(Target {
            grantee,
            copy: share.copy,
            copy_under: copy_keys.0,
            keep_copy_under: copy_keys.1,
        })
    }

    /// Checks `copy_under` and `keep_copy_under`; `None` when either is invalid.
    fn copy_keys(
        &mut self,
        file: &Path,
        path: &str,
        share: &RawShare,
        grantee: &Grantee,
        region: &str,
    ) -> Option<(Option<String>, Option<String>)> {
        if share.copy_under.is_none() && share.keep_copy_under.is_none() {
            return Some((None, None));
        }
        let Grantee::Account(target) = grantee else {
            self.hinted("copy-key-needs-account", file, path, format!("`copy_under` and `keep_copy_under` are set for {}", describe(grantee)), "a copy under a target's key is made for one account; list each account as its own entry");
            return None;
        };
        if share.copy_under.is_some() && share.keep_copy_under.is_some() {
            self.hinted("conflicting-copy-keys", file, path, "both `copy_under` and `keep_copy_under` are set".into(), "share a copy made by the source (`copy_under`) or let the target keep its own (`keep_copy_under`), not both");
            return None;
        }
        let mut ok = true;
        if let Some(arn) = &share.copy_under {
            ok &= self.target_key(file, &format!("{path}.copy_under"), arn, target, region);
        }
        if let Some(arn) = &share.keep_copy_under {
            ok &= self.target_key(
                file,
                &format!("{path}.keep_copy_under"),
                arn,
                target,
                region,
            );
            let has_role = self
                .accounts
                .iter()
                .any(|(a, _)| &a.id == target && a.role.is_some());
            if !has_role {
                self.hinted("keep-copy-needs-role", file, &format!("{path}.keep_copy_under"), format!("account `{target}` makes its own copy, but it is not declared with a `role_arn`"), "declare the account under `accounts` with a role amishare can assume in it");
                ok = false;
            }
        }
        ok.then(|| (share.copy_under.clone(), share.keep_copy_under.clone()))
    }

    fn account_grantee(
        &mut self,
        file: &Path,
        path: &str,
        value: &str,
        owner: Option<&str>,
    ) -> Option<Grantee> {
        let id = match self.declared_account(value) {
            Some(id) => id,
            None if self.broken_accounts.iter().any(|name| name == value) => return None,
            None => {
                if let Err(reason) = ids::check_account_id(value) {
                    let message = format!(
                        "`{value}` is neither a declared account name nor an account id: {reason}"
                    );
                    self.hinted(
                        "invalid-account-id",
                        file,
                        path,
                        message,
                        "use a name from `accounts` or a 12-digit id such as \"012345678901\"",
                    );
                    return None;
                }
                value.to_owned()
            }
        };
        if owner == Some(id.as_str()) {
            self.hinted(
                "share-with-owner",
                file,
                path,
                format!("account `{id}` owns these images"),
                "remove this entry; an owner can always use its own images",
            );
            return None;
        }
        Some(Grantee::Account(id))
    }

    fn public_grantee(&mut self, file: &Path, path: &str, group: &str) -> Option<Grantee> {
        if group != "all" {
            self.hinted(
                "invalid-group",
                file,
                path,
                format!("invalid group `{group}`"),
                "the only group is `all`, which makes the images public",
            );
            return None;
        }
        // Copied from the `settings` of any file: settings must agree across files.
        let allowed = self.settings.as_ref().is_some_and(|(s, _)| s.allow_public);
        if !allowed {
            self.hinted(
                "public-not-allowed",
                file,
                path,
                "`group: all` would make the images public".into(),
                "set `settings.allow_public: true` if these images must be public",
            );
            return None;
        }
        Some(Grantee::Public)
    }
}

fn describe(grantee: &Grantee) -> String {
    match grantee {
        Grantee::Account(id) => format!("account `{id}`"),
        Grantee::Organization { arn, .. } => format!("organization `{arn}`"),
        Grantee::OrganizationalUnit { arn, .. } => format!("OU `{arn}`"),
        Grantee::Public => "group `all`".to_owned(),
    }
}
