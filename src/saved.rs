//! Saved plans. `plan --out FILE` writes the plan together with the spec files it came
//! from and a SHA-256 fingerprint of each piece of live state it was computed from.
//! `apply FILE` reads that state again and applies the saved changes only while every
//! fingerprint still matches.
//!
//! A saved plan is a JSON object whose `amishare_saved_plan` field holds its format
//! version. That field tells it apart from a spec, and no spec may have it.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::model::Scope;
use crate::observe::{Observed, ObservedImage, ObservedKey};
use crate::plan::{Change, Plan};
use crate::spec::{self, Diagnostics, Spec};

/// Version of the saved plan format.
pub const SAVED_PLAN_VERSION: u32 = 1;

/// Field that marks a JSON file as a saved plan and contains its format version.
const MARKER: &str = "amishare_saved_plan";

/// Largest file read as a saved plan. Larger files are left to the spec loader, which
/// rejects them as too large.
pub const MAX_SAVED_PLAN_BYTES: u64 = 64 * 1024 * 1024;

/// A plan with everything `apply` needs to check and make it later.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    /// Format version of the file, [`SAVED_PLAN_VERSION`].
    pub amishare_saved_plan: u32,
    /// Version of amishare that wrote the file; only the same version applies it.
    pub amishare_version: String,
    /// The spec files the plan was computed from, in load order.
    pub specs: Vec<SpecSource>,
    /// One entry per piece of live state the plan was computed from, sorted.
    pub fingerprints: Vec<Fingerprint>,
    pub plan: Plan,
}

/// One spec file, as read when the plan was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecSource {
    /// The path as given on the command line, or found in a given directory.
    pub path: String,
    pub text: String,
}

/// The SHA-256 digest of one resource's live state as observed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    pub resource: Resource,
    /// Hex-encoded SHA-256 of the state the plan depends on.
    pub sha256: String,
}

/// A resource whose live state a plan depends on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub kind: ResourceKind,
    pub account: String,
    pub region: String,
    /// Image or snapshot id, a declared key's name, the ARN of another key, or where in
    /// the spec a selection is declared.
    pub id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// State and launch permissions of an image or of a copy amishare made, and its
    /// snapshot ids.
    Image,
    /// Encryption and createVolumePermission of a snapshot, and whether it was found.
    Snapshot,
    /// Metadata and policy text of a key.
    Key,
    /// The image ids a selector in the spec resolved to.
    Selection,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ResourceKind::Image => "image",
            ResourceKind::Snapshot => "snapshot",
            ResourceKind::Key => "key",
            ResourceKind::Selection => "image selection",
        };
        write!(
            f,
            "{kind} `{}` in account {} in {}",
            self.id, self.account, self.region
        )
    }
}

/// An error writing, reading or using a saved plan.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read `{}`", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write `{}`", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a valid saved plan{}", .path.display(), at_field(.field))]
    Invalid {
        path: PathBuf,
        field: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{}` is saved plan format `{found}`, but this amishare reads format `{SAVED_PLAN_VERSION}`", .path.display())]
    Format { path: PathBuf, found: Value },
    #[error("`{}` was saved by amishare `{found}`, but this is amishare `{}`", .path.display(), env!("CARGO_PKG_VERSION"))]
    Version { path: PathBuf, found: String },
    #[error("the spec saved in the plan is not valid: {0}")]
    Spec(String),
    #[error("cannot write the saved spec files to a temporary directory")]
    Temp(#[source] std::io::Error),
}

/// Formats where a field is in the document, or nothing for the document itself, which
/// serde_path_to_error writes as `.`.
fn at_field(field: &str) -> String {
    if field == "." {
        String::new()
    } else {
        format!(" at `{field}`")
    }
}

impl SavedPlan {
    /// Creates a saved plan for `plan`, which this amishare computed from `specs` and
    /// `observed`.
    pub fn new(specs: Vec<SpecSource>, spec: &Spec, observed: &Observed, plan: Plan) -> Self {
        SavedPlan {
            amishare_saved_plan: SAVED_PLAN_VERSION,
            amishare_version: env!("CARGO_PKG_VERSION").to_owned(),
            specs,
            fingerprints: fingerprints(spec, observed),
            plan,
        }
    }

    /// Serializes the saved plan as pretty-printed JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        // Plans, strings and numbers always serialize.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Writes the saved plan to `path`, replacing any file there.
    pub fn write(&self, path: &Path) -> Result<(), SavedPlanError> {
        std::fs::write(path, self.to_json()).map_err(|source| SavedPlanError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads `path` when it is a saved plan; `Ok(None)` when it is anything else, such as
    /// a spec file or a directory.
    pub fn read(path: &Path) -> Result<Option<SavedPlan>, SavedPlanError> {
        let Some(document) = marked_document(path)? else {
            return Ok(None);
        };
        let format = &document[MARKER];
        if format.as_u64() != Some(u64::from(SAVED_PLAN_VERSION)) {
            return Err(SavedPlanError::Format {
                path: path.to_path_buf(),
                found: format.clone(),
            });
        }
        let version = document.get("amishare_version").and_then(Value::as_str);
        if version != Some(env!("CARGO_PKG_VERSION")) {
            return Err(SavedPlanError::Version {
                path: path.to_path_buf(),
                found: version.unwrap_or("unknown").to_owned(),
            });
        }
        serde_path_to_error::deserialize(Value::Object(document))
            .map(Some)
            .map_err(|err| SavedPlanError::Invalid {
                path: path.to_path_buf(),
                field: err.path().to_string(),
                source: err.into_inner(),
            })
    }

    /// Loads and validates the spec saved in the plan.
    pub fn spec(&self) -> Result<Spec, SavedPlanError> {
        load_sources(&self.specs)
    }

    /// Lists the resources whose live state in `observed` differs from when the plan was
    /// saved, and those that only one of the two observations contains.
    pub fn stale(&self, spec: &Spec, observed: &Observed) -> Vec<Resource> {
        let saved: BTreeSet<&Fingerprint> = self.fingerprints.iter().collect();
        let current = fingerprints(spec, observed);
        let current: BTreeSet<&Fingerprint> = current.iter().collect();
        let changed: BTreeSet<Resource> = saved
            .symmetric_difference(&current)
            .map(|f| f.resource.clone())
            .collect();
        changed.into_iter().collect()
    }

    /// Checks that the saved changes are those of `fresh`, the plan made again from the
    /// saved specs and the live state, copy idempotency tokens aside. Once
    /// [`SavedPlan::stale`] finds nothing, they are unless the file was edited, so this
    /// check keeps a hand-made change (such as a public launch permission the spec does
    /// not allow) from being applied.
    pub fn follows_from(&self, fresh: &Plan) -> bool {
        without_tokens(fresh) == without_tokens(&self.plan)
    }

    /// Compares each saved spec with the file at its saved path, relative to the current
    /// directory. Returns the paths whose file differs, and those with no file to compare.
    pub fn check_sources(&self) -> (Vec<String>, Vec<String>) {
        let mut differ = Vec::new();
        let mut absent = Vec::new();
        for source in &self.specs {
            match std::fs::read_to_string(&source.path) {
                Ok(text) if text == source.text => {}
                Ok(_) => differ.push(source.path.clone()),
                Err(_) => absent.push(source.path.clone()),
            }
        }
        (differ, absent)
    }
}

/// Copies the plan's changes with every copy's client token cleared, because a token
/// depends on when the plan was made.
fn without_tokens(plan: &Plan) -> Vec<Change> {
    let mut changes = plan.changes.clone();
    for change in &mut changes {
        if let Change::Copy(copy) = change {
            copy.request.client_token.clear();
        }
    }
    changes
}

/// Whether `path` is a file with the saved plan marker, whatever its version.
pub fn is_saved_plan(path: &Path) -> bool {
    matches!(marked_document(path), Ok(Some(_)))
}

/// Reads the JSON object in `path` when it has the saved plan marker.
fn marked_document(path: &Path) -> Result<Option<Map<String, Value>>, SavedPlanError> {
    let is_candidate =
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= MAX_SAVED_PLAN_BYTES);
    if !is_candidate {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|source| SavedPlanError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(document)) if document.contains_key(MARKER) => Ok(Some(document)),
        _ => Ok(None),
    }
}

/// Reads the spec files `paths` name, expanding directories the way [`spec::load`] does:
/// their `*.yaml` and `*.yml` files, in name order.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<SpecSource>, SavedPlanError> {
    let mut sources = Vec::new();
    for path in paths {
        for file in spec_files(path)? {
            let text = std::fs::read_to_string(&file).map_err(|source| SavedPlanError::Read {
                path: file.clone(),
                source,
            })?;
            sources.push(SpecSource {
                path: file.display().to_string(),
                text,
            });
        }
    }
    Ok(sources)
}

// NOTE: this repeats the directory rule of `spec::load`, which does not expose the files
// it reads; a test checks that both read the same files.
fn spec_files(path: &Path) -> Result<Vec<PathBuf>, SavedPlanError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let read_error = |source| SavedPlanError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_error)? {
        let file = entry.map_err(read_error)?.path();
        let is_yaml = matches!(
            file.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if file.is_file() && is_yaml {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads and validates saved spec files. One file is parsed in memory; several are
/// written to a temporary directory first, because merging files takes paths.
pub fn load_sources(sources: &[SpecSource]) -> Result<Spec, SavedPlanError> {
    let invalid = |Diagnostics(problems): Diagnostics| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        SavedPlanError::Spec(lines.join("; "))
    };
    if let [only] = sources {
        return spec::load_str(Path::new(&only.path), &only.text).map_err(invalid);
    }
    let dir = tempfile::tempdir().map_err(SavedPlanError::Temp)?;
    let mut paths = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let name = Path::new(&source.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The index keeps the files apart and in load order.
        let path = dir.path().join(format!("{index:04}-{name}"));
        std::fs::write(&path, &source.text).map_err(SavedPlanError::Temp)?;
        paths.push(path);
    }
    spec::load(&paths).map_err(invalid)
}

/// Fingerprints every image, copy, snapshot, key and image selection in `observed`,
/// sorted.
pub fn fingerprints(spec: &Spec, observed: &Observed) -> Vec<Fingerprint> {
    let mut all = BTreeSet::new();
    for ((scope, _), image) in &observed.images {
        image_fingerprints(scope, image, &mut all);
    }
    for (scope, copies) in &observed.copies {
        for copy in copies {
            image_fingerprints(scope, copy, &mut all);
        }
    }
    for (index, ids) in &observed.selected {
        let (scope, origin) = match spec.images.get(*index) {
            Some(group) => (
                Scope::new(&group.account, &group.region),
                group.origin.clone(),
            ),
            None => (Scope::new("", ""), format!("images[{index}]")),
        };
        let state = json!({ "image_ids": ids });
        all.insert(fingerprint(
            ResourceKind::Selection,
            &scope,
            &origin,
            &state,
        ));
    }
    for (name, key) in &observed.keys {
        let scope = spec
            .key(name)
            .map(|k| Scope::new(&k.account, &k.region))
            .unwrap_or_else(|| Scope::new("", ""));
        all.insert(fingerprint(
            ResourceKind::Key,
            &scope,
            name,
            &key_state(key),
        ));
    }
    for (arn, result) in &observed.snapshot_keys {
        let state = match result {
            Ok(metadata) => json!({
                "key_id": metadata.key_id,
                "manager": metadata.manager,
                "state": metadata.state,
            }),
            Err(err) => json!({ "error": err.code }),
        };
        all.insert(fingerprint(ResourceKind::Key, &arn_scope(arn), arn, &state));
    }
    all.into_iter().collect()
}

/// Adds the fingerprints of an image and of each of its snapshots.
fn image_fingerprints(scope: &Scope, image: &ObservedImage, all: &mut BTreeSet<Fingerprint>) {
    let launch: Vec<String> = image.launch.iter().map(ToString::to_string).collect();
    let state = json!({
        "state": image.image.state,
        "snapshot_ids": image.image.snapshot_ids,
        "launch_permissions": launch,
    });
    all.insert(fingerprint(
        ResourceKind::Image,
        scope,
        &image.image.id,
        &state,
    ));
    for snapshot in &image.snapshots {
        let state = json!({
            "missing": snapshot.missing,
            "encrypted": snapshot.snapshot.encrypted,
            "kms_key_id": snapshot.snapshot.kms_key_id,
            "create_volume_permissions": snapshot.volume_permissions,
        });
        all.insert(fingerprint(
            ResourceKind::Snapshot,
            scope,
            &snapshot.snapshot.id,
            &state,
        ));
    }
}

/// Collects the state of a declared key: its metadata and policy text. For a key that
/// could not be read, only the error code counts, because the message and request id
/// differ on every call.
fn key_state(key: &ObservedKey) -> Value {
    match key {
        ObservedKey::Found { metadata, policy } => json!({
            "arn": metadata.arn,
            "key_id": metadata.key_id,
            "manager": metadata.manager,
            "state": metadata.state,
            "policy": policy,
        }),
        ObservedKey::Unreadable(err) => json!({ "error": err.code }),
    }
}

/// Reads the account and region from a KMS key ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`).
fn arn_scope(arn: &str) -> Scope {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        [_, _, _, region, account, ..] => Scope::new(*account, *region),
        _ => Scope::new("", ""),
    }
}

fn fingerprint(kind: ResourceKind, scope: &Scope, id: &str, state: &Value) -> Fingerprint {
    // `json!` keeps the order fields are written in, so the bytes are stable.
    let bytes = serde_json::to_vec(state).unwrap_or_default();
    Fingerprint {
        resource: Resource {
            kind,
            account: scope.account.clone(),
            region: scope.region.clone(),
            id: id.to_owned(),
        },
        sha256: hex::encode(Sha256::digest(&bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_scope_reads_region_and_account() {
        let scope = arn_scope("arn:aws:kms:eu-west-1:111111111111:key/abc");
        assert_eq!(scope, Scope::new("111111111111", "eu-west-1"));
    }

    #[test]
    fn arn_scope_of_non_arn_is_empty() {
        assert_eq!(arn_scope("alias/aws/ebs"), Scope::new("", ""));
    }
}
