//! The AWS boundary: every call amishare makes, as one trait. [`sdk::SdkCloud`] implements
//! it on the AWS SDK; [`memory::MemoryCloud`] in memory, for tests and fault injection.
//!
//! Methods take and return the plain types of [`crate::model`], never SDK types. List
//! calls read every page.

pub mod memory;
pub mod retry;
pub mod sdk;

use std::fmt;

use async_trait::async_trait;

use crate::model::{CopyRequest, Image, KeyMetadata, LaunchEntry, Scope, Snapshot};

/// A failed AWS call, with what AWS said about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    /// The API operation, such as `ModifyImageAttribute`.
    pub operation: &'static str,
    pub scope: Scope,
    /// The AWS error code, such as `InvalidAMIID.NotFound`; `None` when no response came.
    pub code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
}

impl AwsError {
    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed in {}", self.operation, self.scope)?;
        match &self.code {
            Some(code) => write!(f, ": {code}: {}", self.message)?,
            None => write!(f, ": {}", self.message)?,
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}

pub type AwsResult<T> = Result<T, AwsError>;

/// The AWS calls amishare makes. Each call acts in one account and region (`scope`).
#[async_trait]
pub trait Cloud: Send + Sync {
    /// Images owned by the scope's account among `ids`. Ids that do not exist, or that the
    /// account does not own, are left out rather than failing the call.
    async fn describe_images(&self, scope: &Scope, ids: &[String]) -> AwsResult<Vec<Image>>;

    /// Images the scope's account owns whose name matches `name` (EC2 wildcards `*` and
    /// `?`) and that have every tag in `tags`.
    async fn select_images(
        &self,
        scope: &Scope,
        name: Option<&str>,
        tags: &[(String, String)],
    ) -> AwsResult<Vec<Image>>;

    /// Snapshots among `ids`; ids that do not exist are left out.
    async fn describe_snapshots(&self, scope: &Scope, ids: &[String]) -> AwsResult<Vec<Snapshot>>;

    async fn launch_permissions(
        &self,
        scope: &Scope,
        image_id: &str,
    ) -> AwsResult<Vec<LaunchEntry>>;

    /// Account ids in the snapshot's createVolumePermission attribute.
    async fn create_volume_permissions(
        &self,
        scope: &Scope,
        snapshot_id: &str,
    ) -> AwsResult<Vec<String>>;

    async fn describe_key(&self, scope: &Scope, key: &str) -> AwsResult<KeyMetadata>;

    /// The key's `default` policy, as KMS returns it.
    async fn get_key_policy(&self, scope: &Scope, key_id: &str) -> AwsResult<String>;

    /// Adds and removes launchPermission entries in one ModifyImageAttribute call.
    async fn modify_launch_permissions(
        &self,
        scope: &Scope,
        image_id: &str,
        add: &[LaunchEntry],
        remove: &[LaunchEntry],
    ) -> AwsResult<()>;

    /// Adds and removes createVolumePermission accounts in one ModifySnapshotAttribute call.
    async fn modify_create_volume_permissions(
        &self,
        scope: &Scope,
        snapshot_id: &str,
        add: &[String],
        remove: &[String],
    ) -> AwsResult<()>;

    /// Images the scope's account owns whose [`crate::model::TAG_COPY_OF`] tag is one of
    /// `copy_of`: the copies amishare made, in any state.
    async fn find_copies(&self, scope: &Scope, copy_of: &[String]) -> AwsResult<Vec<Image>>;

    /// Starts a copy in the scope's account and region and returns the new image's id.
    async fn copy_image(&self, scope: &Scope, request: &CopyRequest) -> AwsResult<String>;

    /// Replaces the key's `default` policy. Never bypasses the lockout safety check.
    async fn put_key_policy(&self, scope: &Scope, key_id: &str, policy: &str) -> AwsResult<()>;

    /// Returns the principal that calls in the scope's account are made as: the role
    /// amishare assumes, or the ARN of the default credentials. `None` when it is unknown.
    fn caller(&self, scope: &Scope) -> Option<String>;
}
