//! Making copies: starting each CopyImage, waiting until the copy is available or
//! failed, and checking that every snapshot of it is under the requested key.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::aws::{AwsError, Cloud};
use crate::model::Scope;
use crate::plan::CopyChange;

/// Limits for making copies and waiting for them.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// How long to wait for all copies before giving up on those still pending.
    pub timeout: Duration,
    /// Copies in flight at once per destination region. EC2 allows a few hundred
    /// concurrent copies per destination region (300 in EC2's current guides, 50 in older ones)
    /// and refills CopyImage at 1 request per second.
    pub max_in_flight_per_region: usize,
    /// First wait between two looks at a pending copy; it doubles up to `max_poll`.
    pub first_poll: Duration,
    pub max_poll: Duration,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            timeout: Duration::from_secs(2 * 60 * 60),
            max_in_flight_per_region: 20,
            first_poll: Duration::from_secs(1),
            max_poll: Duration::from_secs(30),
        }
    }
}

/// Progress reports while copies are made; the CLI shows them.
pub trait CopyProgress: Send + Sync {
    /// Reports that `copy` is being waited for; `resumed` when an earlier run started it.
    fn started(&self, copy: &str, resumed: bool);
    fn finished(&self, copy: &str, outcome: &str);
}

/// A progress sink that reports nothing, for tests and libraries.
pub struct NoProgress;

impl CopyProgress for NoProgress {
    fn started(&self, _: &str, _: bool) {}
    fn finished(&self, _: &str, _: &str) {}
}

/// How one copy ended.
#[derive(Debug)]
pub enum CopyOutcome {
    /// Available, with every snapshot under the requested key.
    Available(String),
    Failed {
        image_id: String,
        reason: String,
    },
    /// A snapshot of the copy is under another key.
    WrongKey {
        image_id: String,
        snapshot_id: String,
        found: String,
    },
    /// Still pending when the timeout ran out.
    TimedOut(String),
    Error(AwsError),
}

/// Makes or waits for every copy, at most `max_in_flight_per_region` at a time per
/// destination region. Returns one outcome per change, in order.
pub async fn make_copies(
    cloud: &dyn Cloud,
    changes: &[&CopyChange],
    options: &CopyOptions,
    progress: &dyn CopyProgress,
) -> Vec<CopyOutcome> {
    let deadline = Instant::now() + options.timeout;
    let mut limits: BTreeMap<String, Arc<Semaphore>> = BTreeMap::new();
    for change in changes {
        limits
            .entry(change.scope.region.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(options.max_in_flight_per_region.max(1))));
    }
    let runs = changes.iter().map(|change| {
        let limit = limits.get(&change.scope.region).cloned();
        async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = match &limit {
                Some(limit) => limit.acquire().await.ok(),
                None => None,
            };
            make_one(cloud, change, options, deadline, progress).await
        }
    });
    join_all(runs).await
}

/// Names a copy by its source, destination and key, which together tell apart the
/// copies of one image.
pub(super) fn label(change: &CopyChange) -> String {
    let key = change.key_name.as_deref().map_or_else(
        || change.request.key_arn.clone(),
        |name| format!("key `{name}`"),
    );
    format!(
        "{} to account {} in {} under {key}",
        change.request.source_image, change.scope.account, change.scope.region
    )
}

async fn make_one(
    cloud: &dyn Cloud,
    change: &CopyChange,
    options: &CopyOptions,
    deadline: Instant,
    progress: &dyn CopyProgress,
) -> CopyOutcome {
    let label = label(change);
    let image_id = match &change.pending_image {
        Some(id) => id.clone(),
        None => match start(cloud, change, options, deadline).await {
            Ok(id) => id,
            Err(err) => {
                warn!(copy = %label, error = %err, "copy failed to start");
                return CopyOutcome::Error(err);
            }
        },
    };
    let resumed = change.pending_image.is_some();
    info!(copy = %label, image = %image_id, resumed, "copy started");
    progress.started(&label, resumed);
    let outcome = settle(
        cloud,
        &change.scope,
        &image_id,
        &change.request.key_arn,
        options,
        deadline,
    )
    .await;
    let summary = match &outcome {
        CopyOutcome::Available(id) => format!("available as {id}"),
        CopyOutcome::Failed { reason, .. } => format!("failed: {reason}"),
        CopyOutcome::WrongKey {
            snapshot_id, found, ..
        } => format!("snapshot {snapshot_id} is under {found}"),
        CopyOutcome::TimedOut(id) => format!("{id} still pending at the timeout"),
        CopyOutcome::Error(err) => err.to_string(),
    };
    info!(copy = %label, outcome = %summary, "copy finished");
    progress.finished(&label, &summary);
    outcome
}

/// Starts a copy, retrying while EC2 reports too many copies in flight
/// (`ResourceLimitExceeded`) until the deadline.
async fn start(
    cloud: &dyn Cloud,
    change: &CopyChange,
    options: &CopyOptions,
    deadline: Instant,
) -> Result<String, AwsError> {
    let mut wait = options.first_poll;
    loop {
        match cloud.copy_image(&change.scope, &change.request).await {
            Err(err)
                if err.is_code("ResourceLimitExceeded") && Instant::now() + wait < deadline =>
            {
                warn!(region = %change.scope.region, retry_in = ?wait, "too many copies in flight; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(options.max_poll);
            }
            result => return result,
        }
    }
}

/// Waits until the copy is available or failed, then checks its snapshots' key.
// NOTE: each copy is polled on its own; many copies in one region would be cheaper to
// poll with one DescribeImages call.
async fn settle(
    cloud: &dyn Cloud,
    scope: &Scope,
    image_id: &str,
    key_arn: &str,
    options: &CopyOptions,
    deadline: Instant,
) -> CopyOutcome {
    let mut wait = options.first_poll;
    loop {
        let images = match cloud.describe_images(scope, &[image_id.to_owned()]).await {
            Ok(images) => images,
            Err(err) => return CopyOutcome::Error(err),
        };
        let Some(image) = images.into_iter().next() else {
            return CopyOutcome::Failed {
                image_id: image_id.to_owned(),
                reason: "the copy no longer exists".to_owned(),
            };
        };
        match image.state.as_str() {
            "available" => {
                return check_key(cloud, scope, &image.id, &image.snapshot_ids, key_arn).await;
            }
            "pending" if Instant::now() + wait < deadline => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(options.max_poll);
            }
            "pending" => return CopyOutcome::TimedOut(image.id),
            state => {
                let reason = image
                    .state_reason
                    .unwrap_or_else(|| format!("state `{state}`"));
                return CopyOutcome::Failed {
                    image_id: image.id,
                    reason,
                };
            }
        }
    }
}

async fn check_key(
    cloud: &dyn Cloud,
    scope: &Scope,
    image_id: &str,
    snapshot_ids: &[String],
    key_arn: &str,
) -> CopyOutcome {
    let snapshots = match cloud.describe_snapshots(scope, snapshot_ids).await {
        Ok(snapshots) => snapshots,
        Err(err) => return CopyOutcome::Error(err),
    };
    for id in snapshot_ids {
        let found = snapshots
            .iter()
            .find(|s| &s.id == id)
            .and_then(|s| s.kms_key_id.clone().filter(|_| s.encrypted));
        if found.as_deref() != Some(key_arn) {
            return CopyOutcome::WrongKey {
                image_id: image_id.to_owned(),
                snapshot_id: id.clone(),
                found: found.unwrap_or_else(|| "no key (unencrypted)".to_owned()),
            };
        }
    }
    CopyOutcome::Available(image_id.to_owned())
}
