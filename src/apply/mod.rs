//! Makes a plan's changes in a safe order, so no target ever sees an image it cannot use:
//! key grants, then snapshot permissions, then launch permissions; removals in the
//! reverse order, key revocations last.
//!
//! Each step is independent where it can be. A failed step is recorded and the steps
//! that depend on it (a launch permission whose key grant failed) are skipped; the rest
//! go on, and the next run picks up what is left.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

mod copies;

pub use copies::{CopyOptions, CopyOutcome, CopyProgress, NoProgress};

use futures::future::join_all;
use tracing::{info, warn};

use crate::aws::{AwsError, Cloud};
use crate::observe::observe;
use crate::plan::{self, Change, CopyChange, KeyPolicyChange, LaunchChange, Plan, VolumeChange};
use crate::policy::{self, Members, Policy, PolicyError};
use crate::spec::Spec;

/// Outcome of each step of an apply.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub done: Vec<String>,
    pub failed: Vec<(String, StepError)>,
    pub skipped: Vec<(String, String)>,
}

impl ApplyReport {
    fn merge(&mut self, other: ApplyReport) {
        self.done.extend(other.done);
        self.failed.extend(other.failed);
        self.skipped.extend(other.skipped);
    }

    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("the key policy read back before writing cannot be parsed")]
    Policy(#[from] PolicyError),
    #[error("the key policy now has managed statements amishare does not write: {0}")]
    Malformed(String),
    #[error("{0}")]
    Copy(String),
    #[error("the key policy would exceed the KMS limit of 32 KB; nothing was written")]
    TooLarge,
    #[error("the key policy kept changing while it was written; another writer is active")]
    Contended,
    #[error(
        "the rewritten key policy would change statements amishare does not own; nothing was written"
    )]
    ForeignChanged,
    #[error("{0}; nothing was written")]
    Lockout(String),
}

#[derive(Default)]
struct Failures {
    /// Keys whose grant step failed: additions that rely on them are skipped.
    grants: BTreeSet<String>,
    /// Images whose snapshot additions failed: their launch additions are skipped.
    images: BTreeSet<String>,
    /// Keys with an image whose removals failed: their revocations are skipped.
    revocations: BTreeSet<String>,
}

/// Rounds of copies at most: a target's own copy of a re-encrypted copy needs two.
const COPY_ROUNDS: usize = 3;

/// Applies `plan` with its copies: makes and waits for the copies, plans again so the
/// new copies' shares are known, and applies the rest. Returns the report and the plan
/// that was applied after the copies.
pub async fn apply_all(
    cloud: &dyn Cloud,
    spec: &Spec,
    plan: &Plan,
    options: &CopyOptions,
    progress: &dyn CopyProgress,
) -> Result<(ApplyReport, Plan), AwsError> {
    let mut report = ApplyReport::default();
    let mut current = plan.clone();
    for round in 0..=COPY_ROUNDS {
        // Shares go first: a target can copy only an image already shared with it.
        report.merge(apply(cloud, &without_copies(&current)).await);
        let copies: Vec<&CopyChange> = current
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Copy(copy) => Some(copy),
                _ => None,
            })
            .collect();
        if copies.is_empty() || round == COPY_ROUNDS {
            break;
        }
        let outcomes = copies::make_copies(cloud, &copies, options, progress).await;
        let made = record_copies(&mut report, &copies, outcomes);
        if made.is_empty() {
            break;
        }
        // Only what follows from the new copies is applied without review: their shares,
        // and copies made from them. Anything else that changed meanwhile waits for the
        // next plan.
        let replanned = plan::plan(spec, &observe(cloud, spec).await?);
        current = follow_up(replanned, &made);
    }
    Ok((report, current))
}

/// Keeps the changes of `plan` that follow from the copies `made`: their permissions,
/// and copies made from them. A copy of any other image, one that appeared since the
/// review or one whose copy failed to start, waits for the next plan.
fn follow_up(plan: Plan, made: &BTreeSet<String>) -> Plan {
    let follows = |change: &Change| match change {
        Change::Copy(copy) => made.contains(&copy.request.source_image),
        Change::LaunchPermissions(c) => made.contains(&c.image_id),
        Change::VolumePermissions(c) => made.contains(&c.image_id),
        Change::KeyPolicy(_) => false,
    };
    Plan {
        changes: plan.changes.into_iter().filter(follows).collect(),
        findings: plan.findings,
    }
}

fn without_copies(plan: &Plan) -> Plan {
    Plan {
        changes: plan
            .changes
            .iter()
            .filter(|c| !matches!(c, Change::Copy(_)))
            .cloned()
            .collect(),
        findings: plan.findings.clone(),
    }
}

/// Records each copy's outcome and returns the ids of the available copies.
fn record_copies(
    report: &mut ApplyReport,
    copies: &[&CopyChange],
    outcomes: Vec<CopyOutcome>,
) -> BTreeSet<String> {
    let mut made = BTreeSet::new();
    for (change, outcome) in copies.iter().zip(outcomes) {
        let step = format!("copy {}", copies::label(change));
        let error = match outcome {
            CopyOutcome::Available(id) => {
                report.done.push(format!("{step}: {id}"));
                made.insert(id);
                continue;
            }
            CopyOutcome::Failed { image_id, reason } => {
                StepError::Copy(format!("copy {image_id} failed: {reason}"))
            }
            CopyOutcome::WrongKey {
                image_id,
                snapshot_id,
                found,
            } => StepError::Copy(format!(
                "snapshot {snapshot_id} of copy {image_id} is under {found}, not under the requested key {}",
                change.request.key_arn
            )),
            CopyOutcome::TimedOut(id) => StepError::Copy(format!(
                "copy {id} is still pending at the timeout; run apply again to keep waiting"
            )),
            CopyOutcome::Error(err) => StepError::Aws(err),
        };
        report.failed.push((step, error));
    }
    made
}

/// Applies `plan`'s permission and key policy changes and reports every step. Copies
/// are made by [`apply_all`].
pub async fn apply(cloud: &dyn Cloud, plan: &Plan) -> ApplyReport {
    let mut report = ApplyReport::default();
    let mut failures = Failures::default();
    let keys: Vec<&KeyPolicyChange> = plan
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::KeyPolicy(k) => Some(k),
            _ => None,
        })
        .collect();
    let volumes: Vec<&VolumeChange> = plan
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::VolumePermissions(v) => Some(v),
            _ => None,
        })
        .collect();
    let launches: Vec<&LaunchChange> = plan
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::LaunchPermissions(l) => Some(l),
            _ => None,
        })
        .collect();

    let grants = join_all(keys.iter().map(|k| write_key(cloud, k, Phase::Grant))).await;
    for (change, result) in keys.iter().zip(grants) {
        let step = format!("grant on key policy of `{}`", change.key_name);
        if record(
            &mut report,
            step,
            result.map(|written| written.then_some(())),
        ) {
            failures.grants.insert(change.key_name.clone());
        }
    }

    let additions: Vec<&&VolumeChange> = volumes.iter().filter(|v| !v.add.is_empty()).collect();
    let results = join_all(
        additions
            .iter()
            .map(|v| volume_step(cloud, v, &failures, true)),
    )
    .await;
    for (change, result) in additions.iter().zip(results) {
        if let Some(result) = result {
            let step = format!(
                "add create volume permission on {} of {}",
                change.snapshot_id, change.image_id
            );
            if record(&mut report, step, result.map(Some)) {
                failures.images.insert(change.image_id.clone());
            }
        } else {
            report.skipped.push((
                format!("create volume permission on {}", change.snapshot_id),
                format!(
                    "the grant on key `{}` failed",
                    change.key_name.as_deref().unwrap_or_default()
                ),
            ));
        }
    }

    let results = join_all(launches.iter().map(|l| launch_step(cloud, l, &failures))).await;
    for (change, (result, skipped)) in launches.iter().zip(results) {
        if let Some(reason) = skipped {
            report.skipped.push((
                format!("add launch permissions on {}", change.image_id),
                reason,
            ));
        }
        if let Some(result) = result {
            let step = format!("launch permissions on {}", change.image_id);
            if record(&mut report, step, result.map(Some)) && !change.remove.is_empty() {
                failures.revocations.extend(change.key_name.clone());
            }
        }
    }

    let removals: Vec<&&VolumeChange> = volumes.iter().filter(|v| !v.remove.is_empty()).collect();
    let results = join_all(
        removals
            .iter()
            .map(|v| volume_step(cloud, v, &failures, false)),
    )
    .await;
    for (change, result) in removals.iter().zip(results) {
        let step = format!(
            "remove create volume permission on {} of {}",
            change.snapshot_id, change.image_id
        );
        if record(&mut report, step, result.unwrap_or(Ok(())).map(Some)) {
            failures.revocations.extend(change.key_name.clone());
        }
    }

    let mut revocable: Vec<&&KeyPolicyChange> = Vec::new();
    for change in keys
        .iter()
        .filter(|k| !k.removed.is_empty() || !k.drop.is_empty())
    {
        let reason = if failures.grants.contains(&change.key_name) {
            Some("the grant step on this key failed")
        } else if failures.revocations.contains(&change.key_name) {
            Some("removing an image's permissions failed, so its targets keep the key grant")
        } else {
            None
        };
        match reason {
            Some(reason) => report.skipped.push((
                format!("revoke on key policy of `{}`", change.key_name),
                reason.to_owned(),
            )),
            None => revocable.push(change),
        }
    }
    let revokes = join_all(revocable.iter().map(|k| write_key(cloud, k, Phase::Revoke))).await;
    for (change, result) in revocable.iter().zip(revokes) {
        let step = format!("revoke on key policy of `{}`", change.key_name);
        record(
            &mut report,
            step,
            result.map(|written| written.then_some(())),
        );
    }
    report
}

/// Records a step's outcome; `Ok(None)` means nothing had to be done. Returns whether it failed.
fn record<E: Into<StepError>>(
    report: &mut ApplyReport,
    step: String,
    result: Result<Option<()>, E>,
) -> bool {
    match result {
        Ok(Some(())) => {
            info!(step = %step, "applied");
            report.done.push(step);
            false
        }
        Ok(None) => false,
        Err(err) => {
            let err = err.into();
            warn!(step = %step, error = %err, "step failed");
            report.failed.push((step, err));
            true
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Adds the change's new members and drops orphaned ids, keeping every other member.
    Grant,
    /// Removes the members and statements the change revokes, keeping every other member.
    Revoke,
}

/// Re-reads the key policy, applies the change's additions or removals to what it contains
/// now and writes it when that changes its meaning. Statements and members anyone added
/// since the plan are kept.
async fn write_key(
    cloud: &dyn Cloud,
    change: &KeyPolicyChange,
    phase: Phase,
) -> Result<bool, StepError> {
    let mut written = false;
    for _ in 0..WRITE_ATTEMPTS {
        let text = cloud.get_key_policy(&change.scope, &change.key_id).await?;
        let current = Policy::parse(&text)?;
        let next = merged(&current, change, phase)?;
        if next.same_meaning(&current) {
            return Ok(written);
        }
        // Guard against locking anyone out: the statements amishare does not own must
        // reach KMS exactly as they were read, and the account root and the caller must
        // keep the right to change the policy.
        if !next.foreign().eq(current.foreign()) {
            return Err(StepError::ForeignChanged);
        }
        let administrators =
            policy::administrators(&change.key_arn, cloud.caller(&change.scope).as_deref());
        if let Some(lockout) = policy::lockout(&current, &next, &administrators, &change.key_arn) {
            return Err(StepError::Lockout(lockout.to_string()));
        }
        let Some(document) = next.to_document() else {
            return Err(StepError::TooLarge);
        };
        let started = Instant::now();
        cloud
            .put_key_policy(&change.scope, &change.key_id, &document)
            .await?;
        written = true;
        // Another writer may have put its own merge between our read and our write, and
        // one of the two would then be lost. Reading back shows it; the loop merges again.
        // A writer that read before our write lands its own write within about one write's
        // time after ours, so the read back waits for two of them first.
        // NOTE: KMS is eventually consistent, so a read right after a write can show the
        // old policy; that costs one more identical write, never a lost statement.
        tokio::time::sleep((started.elapsed() * 2).min(MAX_SETTLE)).await;
        let back = Policy::parse(&cloud.get_key_policy(&change.scope, &change.key_id).await?)?;
        if merged(&back, change, phase)?.same_meaning(&back) {
            return Ok(true);
        }
        warn!(key = %change.key_arn, "key policy changed while it was written; merging again");
    }
    Err(StepError::Contended)
}

/// Writes of one key policy before giving up on a policy that keeps changing.
const WRITE_ATTEMPTS: usize = 5;

/// Maximum wait between writing a key policy and reading it back.
const MAX_SETTLE: Duration = Duration::from_secs(2);

/// The policy with the change's additions (grant phase) or removals (revoke phase)
/// merged into its current managed statements.
fn merged(current: &Policy, change: &KeyPolicyChange, phase: Phase) -> Result<Policy, StepError> {
    let state = current.managed_state(policy::partition_of(&change.key_arn));
    if !state.malformed.is_empty() {
        return Err(StepError::Malformed(
            state.malformed.into_iter().collect::<Vec<_>>().join(", "),
        ));
    }
    let (target, drop) = match phase {
        Phase::Grant => (granted(&state.members, &change.added), BTreeSet::new()),
        Phase::Revoke => (
            revoked(&state.members, &change.removed),
            change.drop.clone(),
        ),
    };
    Ok(current.with_managed(&target, &drop))
}

/// The current members without orphaned ids, which KMS would reject, plus `added`.
fn granted(current: &Members, added: &[(String, String)]) -> Members {
    let mut members: Members = current
        .iter()
        .map(|(sid, set)| {
            let orphans = policy::orphaned(set);
            (sid.clone(), set.difference(&orphans).cloned().collect())
        })
        .collect();
    for (sid, member) in added {
        members
            .entry(sid.clone())
            .or_default()
            .insert(member.clone());
    }
    members
}

/// The current members less `removed`.
fn revoked(current: &Members, removed: &[(String, String)]) -> Members {
    let mut members = current.clone();
    for (sid, member) in removed {
        if let Some(set) = members.get_mut(sid) {
            set.remove(member);
        }
    }
    members
}

/// Runs the additions (`adding`) or the removals of a snapshot change. A change with
/// both takes two calls, so removals come after the launch permissions are gone.
/// Returns `None` when the step is skipped.
async fn volume_step(
    cloud: &dyn Cloud,
    change: &VolumeChange,
    failures: &Failures,
    adding: bool,
) -> Option<Result<(), AwsError>> {
    if adding {
        if change
            .key_name
            .as_ref()
            .is_some_and(|k| failures.grants.contains(k))
        {
            return None;
        }
        return Some(
            cloud
                .modify_create_volume_permissions(
                    &change.scope,
                    &change.snapshot_id,
                    &change.add,
                    &[],
                )
                .await,
        );
    }
    Some(
        cloud
            .modify_create_volume_permissions(
                &change.scope,
                &change.snapshot_id,
                &[],
                &change.remove,
            )
            .await,
    )
}

/// Adds and removes an image's launch permissions in one call; additions are skipped
/// when a step they depend on failed. Returns the call's result and why additions were skipped.
async fn launch_step(
    cloud: &dyn Cloud,
    change: &LaunchChange,
    failures: &Failures,
) -> (Option<Result<(), AwsError>>, Option<String>) {
    let skip_reason = if change
        .key_name
        .as_ref()
        .is_some_and(|k| failures.grants.contains(k))
    {
        Some(format!(
            "the grant on key `{}` failed",
            change.key_name.as_deref().unwrap_or_default()
        ))
    } else if failures.images.contains(&change.image_id) {
        Some("adding its create volume permissions failed".to_owned())
    } else {
        None
    };
    let add: &[_] = if skip_reason.is_some() || change.add.is_empty() {
        &[]
    } else {
        &change.add
    };
    let skipped = skip_reason.filter(|_| !change.add.is_empty());
    if add.is_empty() && change.remove.is_empty() {
        return (None, skipped);
    }
    let result = cloud
        .modify_launch_permissions(&change.scope, &change.image_id, add, &change.remove)
        .await;
    (Some(result), skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copies::CopyPurpose;
    use crate::model::{CopyRequest, LaunchEntry, Scope};

    fn copy_of(source_image: &str) -> Change {
        let scope = Scope::new("111111111111", "us-east-1");
        Change::Copy(CopyChange {
            scope: scope.clone(),
            purpose: CopyPurpose::KeptByTarget {
                target: "222222222222".into(),
            },
            request: CopyRequest {
                source: scope,
                source_image: source_image.into(),
                name: "golden".into(),
                key_arn: "arn:aws:kms:us-east-1:222222222222:key/k".into(),
                tags: Vec::new(),
                client_token: "token".into(),
            },
            key_name: None,
            pending_image: None,
            shares: vec![LaunchEntry::Account("222222222222".into())],
        })
    }

    #[test]
    fn follow_up_keeps_only_copies_of_new_copies() {
        let made = BTreeSet::from(["ami-00000000000000001".to_owned()]);
        let replanned = Plan {
            changes: vec![
                copy_of("ami-00000000000000001"),
                // An image that appeared while the copies were made was never reviewed.
                copy_of("ami-0000000000000000f"),
            ],
            findings: Vec::new(),
        };
        let kept = follow_up(replanned, &made);
        assert_eq!(kept.changes, vec![copy_of("ami-00000000000000001")]);
    }
}
