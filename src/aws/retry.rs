//! Retries of throttled and transient AWS errors, around any [`Cloud`].
//!
//! The SDK already retries a few times on its own; this layer adds retries bounded in
//! time rather than in count, so a burst of throttling during a large apply is waited
//! out. EC2 throttles with `RequestLimitExceeded` and KMS with `ThrottlingException`
//! (the codes the SDKs treat as throttling).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tracing::warn;

use super::{AwsError, AwsResult, Cloud};
use crate::model::{CopyRequest, Image, KeyMetadata, LaunchEntry, Scope, Snapshot};

/// Error codes worth retrying: throttling, and server-side failures that are transient.
const RETRYABLE: [&str; 13] = [
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "TooManyRequestsException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "KMSInternalException",
    "DependencyTimeoutException",
];

/// How long and how often to retry.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Retries stop once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
    /// First wait; each later wait doubles, up to `max_wait`, with full jitter.
    pub first_wait: Duration,
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_elapsed: Duration::from_secs(120),
            first_wait: Duration::from_millis(200),
            max_wait: Duration::from_secs(10),
        }
    }
}

/// A [`Cloud`] that retries each call of `inner` on throttling and transient errors.
pub struct Retrying<C> {
    inner: C,
    policy: RetryPolicy,
    retries: AtomicUsize,
}

impl<C> Retrying<C> {
    pub fn new(inner: C, policy: RetryPolicy) -> Self {
        Retrying {
            inner,
            policy,
            retries: AtomicUsize::new(0),
        }
    }

    /// Retries made so far, over all calls.
    pub fn retries(&self) -> usize {
        self.retries.load(Ordering::Relaxed)
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    async fn retry<T, F, Fut>(&self, call: F) -> AwsResult<T>
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: std::future::Future<Output = AwsResult<T>> + Send,
    {
        let started = Instant::now();
        let mut wait = self.policy.first_wait;
        let mut attempt = 1;
        loop {
            match call().await {
                Err(err)
                    if retryable(&err) && started.elapsed() + wait < self.policy.max_elapsed =>
                {
                    // Full jitter: a random wait up to the current bound, so throttled
                    // callers do not retry in step.
                    let jittered = wait.mul_f64(fastrand::f64());
                    let total = self.retries.fetch_add(1, Ordering::Relaxed) + 1;
                    warn!(operation = err.operation, account = %err.scope.account, region = %err.scope.region, code = err.code.as_deref().unwrap_or_default(), attempt, retries_so_far = total, retry_in = ?jittered, "retrying");
                    tokio::time::sleep(jittered).await;
                    wait = (wait * 2).min(self.policy.max_wait);
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

fn retryable(err: &AwsError) -> bool {
    err.code
        .as_deref()
        .is_some_and(|code| RETRYABLE.contains(&code))
}

#[async_trait]
impl<C: Cloud> Cloud for Retrying<C> {
    async fn describe_images(&self, scope: &Scope, ids: &[String]) -> AwsResult<Vec<Image>> {
        self.retry(|| self.inner.describe_images(scope, ids)).await
    }

    async fn select_images(
        &self,
        scope: &Scope,
        name: Option<&str>,
        tags: &[(String, String)],
    ) -> AwsResult<Vec<Image>> {
        self.retry(|| self.inner.select_images(scope, name, tags))
            .await
    }

    async fn describe_snapshots(&self, scope: &Scope, ids: &[String]) -> AwsResult<Vec<Snapshot>> {
        self.retry(|| self.inner.describe_snapshots(scope, ids))
            .await
    }

    async fn launch_permissions(
        &self,
        scope: &Scope,
        image_id: &str,
    ) -> AwsResult<Vec<LaunchEntry>> {
        self.retry(|| self.inner.launch_permissions(scope, image_id))
            .await
    }

    async fn create_volume_permissions(
        &self,
        scope: &Scope,
        snapshot_id: &str,
    ) -> AwsResult<Vec<String>> {
        self.retry(|| self.inner.create_volume_permissions(scope, snapshot_id))
            .await
    }

    async fn describe_key(&self, scope: &Scope, key: &str) -> AwsResult<KeyMetadata> {
        self.retry(|| self.inner.describe_key(scope, key)).await
    }

    async fn get_key_policy(&self, scope: &Scope, key_id: &str) -> AwsResult<String> {
        self.retry(|| self.inner.get_key_policy(scope, key_id))
            .await
    }

    async fn modify_launch_permissions(
        &self,
        scope: &Scope,
        image_id: &str,
        add: &[LaunchEntry],
        remove: &[LaunchEntry],
    ) -> AwsResult<()> {
        self.retry(|| {
            self.inner
                .modify_launch_permissions(scope, image_id, add, remove)
        })
        .await
    }

    async fn modify_create_volume_permissions(
        &self,
        scope: &Scope,
        snapshot_id: &str,
        add: &[String],
        remove: &[String],
    ) -> AwsResult<()> {
        self.retry(|| {
            self.inner
                .modify_create_volume_permissions(scope, snapshot_id, add, remove)
        })
        .await
    }

    async fn find_copies(&self, scope: &Scope, copy_of: &[String]) -> AwsResult<Vec<Image>> {
        self.retry(|| self.inner.find_copies(scope, copy_of)).await
    }

    async fn copy_image(&self, scope: &Scope, request: &CopyRequest) -> AwsResult<String> {
        // The request's client token makes a repeated CopyImage return the first copy.
        self.retry(|| self.inner.copy_image(scope, request)).await
    }

    async fn put_key_policy(&self, scope: &Scope, key_id: &str, policy: &str) -> AwsResult<()> {
        self.retry(|| self.inner.put_key_policy(scope, key_id, policy))
            .await
    }

    fn caller(&self, scope: &Scope) -> Option<String> {
        self.inner.caller(scope)
    }
}
