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
