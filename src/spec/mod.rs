//! The spec: what should be shared with whom. Loaded from YAML (`load`), checked
//! (`validate`) and resolved into the types below, which are all that later stages see.

mod diagnostic;
mod expansion;
pub mod ids;
mod load;
pub mod raw;
mod unknown;
mod validate;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics};
pub use expansion::MAX_EXPANDED_BYTES;
pub use load::MAX_SPEC_BYTES;

use crate::model::LaunchEntry;

/// A validated spec, merged from one or more files.
#[derive(Clone, Debug, Default)]
pub struct Spec {
    pub settings: Settings,
    pub accounts: Vec<Account>,
    pub keys: Vec<Key>,
    pub images: Vec<ImageGroup>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub prune: bool,
    pub allow_public: bool,
}

/// An account amishare acts in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub id: String,
    pub role: Option<AssumeRole>,
}

/// A role to assume for calls in one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssumeRole {
    pub arn: String,
    pub external_id: Option<String>,
}

/// A customer managed key whose `amishare-` statements are managed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub account: String,
    pub region: String,
    /// The alias, key id or ARN as written; KMS accepts each form as `KeyId`.
    pub reference: String,
}

/// Images in one account and region that are shared the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageGroup {
    /// Where the group is declared, for messages: file and field path.
    pub origin: String,
    pub account: String,
    pub region: String,
    /// Images selected by id; with a `selector`, the ids it resolved to once observed.
    pub image_ids: Vec<String>,
    pub selector: Option<Selector>,
    /// Name of the key every snapshot must be under; `None` for unencrypted images.
    pub key: Option<String>,
    /// Whether an image not under `key` is shared through a copy re-encrypted under it.
    pub reencrypt: bool,
    /// Template for the names of copies; see [`raw::RawImage::copy_name`].
    pub copy_name: String,
    pub replicas: Vec<Replica>,
    pub targets: Vec<Target>,
}

/// Images selected by name pattern, tags and creation date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub name: Option<String>,
    pub tags: Vec<(String, String)>,
    pub newest: Option<u32>,
    pub must_match: bool,
}

/// Default template for the names of copies.
pub const DEFAULT_COPY_NAME: &str = "{name}-{key}";

/// A copy of an image group in another region, under a key of that region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    pub region: String,
    /// Logical name of the replica's key.
    pub key: String,
}

/// One principal an image group is shared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub grantee: Grantee,
    /// Whether the target may also copy the images (accounts only).
    pub copy: bool,
    /// Key ARN of the target's own key: share a copy under it in place of the image.
    pub copy_under: Option<String>,
    /// Key ARN of the target's own key: the target keeps its own copy under it.
    pub keep_copy_under: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grantee {
    Account(String),
    Organization {
        arn: String,
        id: String,
    },
    OrganizationalUnit {
        arn: String,
        /// Pattern for the `aws:PrincipalOrgPaths` condition key that matches members of
        /// this OU and of the OUs below it.
        org_path: String,
    },
    Public,
}

impl Grantee {
    /// The launchPermission entry that shares an image with this grantee.
    pub fn launch_entry(&self) -> LaunchEntry {
        match self {
            Grantee::Account(id) => LaunchEntry::Account(id.clone()),
            Grantee::Organization { arn, .. } => LaunchEntry::Organization(arn.clone()),
            Grantee::OrganizationalUnit { arn, .. } => LaunchEntry::OrganizationalUnit(arn.clone()),
            Grantee::Public => LaunchEntry::Public,
        }
    }
}

impl Spec {
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }

    pub fn key(&self, name: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// The logical name of an account id, when the spec declares it.
    pub fn account_name(&self, id: &str) -> Option<&str> {
        self.account(id).map(|a| a.name.as_str())
    }
}

/// Loads, merges and validates spec files. Directories are read for `*.yaml` and `*.yml`
/// files, in name order. Every problem in every file is returned together.
pub fn load(paths: &[PathBuf]) -> Result<Spec, Diagnostics> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in expand_paths(paths, &mut problems) {
        match load::load_file(&path) {
            Ok((raw, unknown)) => {
                problems.extend(unknown);
                files.push((path, raw));
            }
            Err(problem) => problems.push(problem),
        }
    }
    let validated = validate::validate(&files);
    match validated {
        Ok(spec) if problems.is_empty() => Ok(spec),
        Ok(_) => Err(Diagnostics(problems)),
        Err(more) => {
            problems.extend(more);
            Err(Diagnostics(problems))
        }
    }
}

/// Parses and validates spec text held in memory, labelled with `path` in messages.
pub fn load_str(path: &Path, text: &str) -> Result<Spec, Diagnostics> {
    let (raw, unknown) = load::parse_str(path, text).map_err(|d| Diagnostics(vec![d]))?;
    let validated = validate::validate(&[(path.to_path_buf(), raw)]);
    match validated {
        Ok(spec) if unknown.is_empty() => Ok(spec),
        Ok(_) => Err(Diagnostics(unknown)),
        Err(mut more) => {
            let mut all = unknown;
            all.append(&mut more);
            Err(Diagnostics(all))
        }
    }
}

fn expand_paths(paths: &[PathBuf], problems: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        match std::fs::read_dir(path) {
            Ok(entries) => {
                let mut found: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.is_file()
                            && matches!(
                                p.extension().and_then(|e| e.to_str()),
                                Some("yaml" | "yml")
                            )
                    })
                    .collect();
                found.sort();
                if found.is_empty() {
                    problems.push(
                        Diagnostic::new("empty-spec-dir", path, "", "no `.yaml` or `.yml` files")
                            .hint("name a spec file, or a directory that holds some"),
                    );
                }
                files.extend(found);
            }
            Err(err) => problems.push(Diagnostic::new(
                "unreadable-spec",
                path,
                "",
                format!("cannot read directory: {err}"),
            )),
        }
    }
    // A file named twice, or named and also found in a named directory, is read once.
    let mut seen = std::collections::BTreeSet::new();
    files.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    files
}

/// The JSON Schema of the spec format, pretty-printed, with a trailing newline.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(raw::RawSpec);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
