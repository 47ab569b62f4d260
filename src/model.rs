//! Plain data for live AWS state, shared by observe, plan, render and apply. None of it
//! is an SDK type, so everything downstream of `aws` is tested without an endpoint.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One account in one region: the unit AWS rate limits apply to, and the unit clients
/// are made for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

impl Scope {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        Scope {
            account: account.into(),
            region: region.into(),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "account {} in {}", self.account, self.region)
    }
}

/// One entry of an image's launchPermission attribute.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum LaunchEntry {
    Account(String),
    Organization(String),
    OrganizationalUnit(String),
    /// The group `all`: the image is public.
    Public,
}

impl fmt::Display for LaunchEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchEntry::Account(id) => write!(f, "account {id}"),
            LaunchEntry::Organization(arn) => write!(f, "organization {arn}"),
            LaunchEntry::OrganizationalUnit(arn) => write!(f, "OU {arn}"),
            LaunchEntry::Public => write!(f, "group all (public)"),
        }
    }
}

/// An image as DescribeImages returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    /// `available`, `pending`, `failed`, `disabled`, ...
    pub state: String,
    pub owner: String,
    /// Snapshot ids of the EBS block device mappings, in mapping order.
    pub snapshot_ids: Vec<String>,
    /// Why the image is in its state, such as the error of a failed copy.
    pub state_reason: Option<String>,
    /// The image's tags.
    pub tags: Vec<(String, String)>,
    /// When the image was created, as the ISO 8601 text EC2 returns, which sorts in time
    /// order.
    pub creation_date: Option<String>,
    /// When the image is or was deprecated, in the same form as `creation_date`.
    pub deprecation_time: Option<String>,
}

impl Image {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Tag naming the image a copy was made from, as `ACCOUNT/REGION/IMAGE_ID`.
pub const TAG_COPY_OF: &str = "amishare:copy-of";
/// Tag holding the ARN of the key a copy was encrypted under.
pub const TAG_KEY: &str = "amishare:key";
/// Tag naming the spec entry a copy serves, as `FILE: FIELD_PATH`.
pub const TAG_ENTRY: &str = "amishare:entry";
/// Tags naming the source of a copy one part each, for people reading them.
pub const TAG_SOURCE_ACCOUNT: &str = "amishare:source-account";
pub const TAG_SOURCE_REGION: &str = "amishare:source-region";
pub const TAG_SOURCE_IMAGE: &str = "amishare:source-image";

/// The value of [`TAG_COPY_OF`] for an image.
pub fn copy_of(source: &Scope, image_id: &str) -> String {
    format!("{}/{}/{image_id}", source.account, source.region)
}

/// A CopyImage call: in the destination account and region, from `source`, encrypted
/// under `key_arn`, with `tags` on the copy and its snapshots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyRequest {
    pub source: Scope,
    pub source_image: String,
    pub name: String,
    pub key_arn: String,
    pub tags: Vec<(String, String)>,
    /// Idempotency token: a repeated call with it returns the first call's image.
    pub client_token: String,
}

/// A snapshot as DescribeSnapshots returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub encrypted: bool,
    /// ARN of the key the snapshot is encrypted under.
    pub kms_key_id: Option<String>,
}

/// Who manages a KMS key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyManager {
    Aws,
    Customer,
}

/// Key metadata as DescribeKey returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMetadata {
    pub arn: String,
    pub key_id: String,
    pub manager: KeyManager,
    /// `Enabled`, `Disabled`, `PendingDeletion`, ...
    pub state: String,
}

impl KeyMetadata {
    pub fn is_usable(&self) -> bool {
        self.state == "Enabled"
    }
}
