//! Diffs the spec against observed state into a [`Plan`]: the changes to make, and
//! findings (blocked changes, warnings) as data. Nothing here calls AWS.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

mod copying;
mod images;
mod keys;

use keys::KeyStatus;

use crate::copies::CopyPurpose;
use crate::model::{CopyRequest, LaunchEntry, Scope};
use crate::observe::Observed;
use crate::policy::Members;
use crate::spec::Spec;

/// What `apply` would do, and why some of it cannot be done.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub findings: Vec<Finding>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn blocked(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Blocked)
    }
}

/// One change to live state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    KeyPolicy(KeyPolicyChange),
    VolumePermissions(VolumeChange),
    LaunchPermissions(LaunchChange),
    Copy(CopyChange),
}

impl Change {
    pub fn scope(&self) -> &Scope {
        match self {
            Change::KeyPolicy(c) => &c.scope,
            Change::VolumePermissions(c) => &c.scope,
            Change::LaunchPermissions(c) => &c.scope,
            Change::Copy(c) => &c.scope,
        }
    }
}

/// A copy of an image to make, or one already started to wait for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CopyChange {
    /// The account that makes and owns the copy, and the copy's region.
    pub scope: Scope,
    pub purpose: CopyPurpose,
    pub request: CopyRequest,
    /// The declared key the copy is under, when it is one.
    pub key_name: Option<String>,
    /// A copy already started and still pending: apply waits for it instead of copying.
    pub pending_image: Option<String>,
    /// Who the copy is shared with once it is available.
    pub shares: Vec<LaunchEntry>,
}

/// A rewrite of the `amishare-` statements of one key policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyPolicyChange {
    pub scope: Scope,
    pub key_name: String,
    pub key_id: String,
    pub key_arn: String,
    /// `(sid, member)` pairs the change grants.
    pub added: Vec<(String, String)>,
    /// `(sid, member)` pairs the change revokes, orphaned unique ids included.
    pub removed: Vec<(String, String)>,
    /// Managed statements with unknown `Sid`s to remove.
    pub drop: BTreeSet<String>,
    /// The policy as read, and as it will be, pretty-printed for review.
    pub before: String,
    pub after: String,
}

/// createVolumePermission accounts to add to and remove from one snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VolumeChange {
    pub scope: Scope,
    pub image_id: String,
    pub snapshot_id: String,
    /// The declared key the image's grants depend on.
    pub key_name: Option<String>,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

/// launchPermission entries to add to and remove from one image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaunchChange {
    pub scope: Scope,
    pub image_id: String,
    pub image_name: Option<String>,
    pub key_name: Option<String>,
    pub add: Vec<LaunchEntry>,
    pub remove: Vec<LaunchEntry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A declared change that cannot be made until the user acts.
    Blocked,
    /// Something the user should act on; nothing is blocked.
    Warning,
    /// Something the plan does that deserves a mention, such as a repair.
    Note,
}

/// Something the plan found that is not a change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable kebab-case identifier, such as `aws-managed-key`.
    pub code: String,
    pub scope: Scope,
    /// The image, snapshot or key the finding is about.
    pub resource: String,
    pub message: String,
    pub hint: Option<String>,
}

/// Computes the plan for `spec` against `observed`.
pub fn plan(spec: &Spec, observed: &Observed) -> Plan {
    let mut planner = Planner::new(spec, observed);
    planner.assess_keys();
    planner.images();
    planner.copy_names();
    planner.key_changes();
    planner.key_findings();
    let mut plan = planner.plan;
    plan.changes.sort_by(|a, b| order(a).cmp(&order(b)));
    plan.findings.sort_by(|a, b| {
        (a.severity, &a.scope, &a.resource, &a.code).cmp(&(
            b.severity,
            &b.scope,
            &b.resource,
            &b.code,
        ))
    });
    plan
}

fn order(change: &Change) -> (&Scope, u8, &str, &str) {
    match change {
        Change::KeyPolicy(c) => (&c.scope, 0, &c.key_name, ""),
        Change::LaunchPermissions(c) => (&c.scope, 1, &c.image_id, ""),
        Change::VolumePermissions(c) => (&c.scope, 1, &c.image_id, &c.snapshot_id),
        Change::Copy(c) => (&c.scope, 2, &c.request.source_image, &c.request.key_arn),
    }
}

/// Why something cannot be changed as declared: a code, a message and a hint.
struct Blocker {
    code: &'static str,
    message: String,
    hint: String,
}

impl Blocker {
    fn new(code: &'static str, message: String, hint: &str) -> Self {
        Blocker {
            code,
            message,
            hint: hint.to_owned(),
        }
    }
}

struct Planner<'a> {
    spec: &'a Spec,
    observed: &'a Observed,
    plan: Plan,
    keys: BTreeMap<String, KeyStatus>,
    /// Members each usable key's managed statements need, by key ARN.
    grants: BTreeMap<String, Members>,
    /// When the plan is made, for copy idempotency tokens.
    started: u64,
}

impl<'a> Planner<'a> {
    fn new(spec: &'a Spec, observed: &'a Observed) -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Planner {
            spec,
            observed,
            plan: Plan::default(),
            keys: BTreeMap::new(),
            grants: BTreeMap::new(),
            started,
        }
    }

    fn finding(
        &mut self,
        severity: Severity,
        code: &'static str,
        scope: &Scope,
        resource: &str,
        message: String,
        hint: Option<&str>,
    ) {
        self.plan.findings.push(Finding {
            severity,
            code: code.to_owned(),
            scope: scope.clone(),
            resource: resource.to_owned(),
            message,
            hint: hint.map(str::to_owned),
        });
    }

    fn blocked(&mut self, scope: &Scope, resource: &str, blocker: Blocker) {
        self.finding(
            Severity::Blocked,
            blocker.code,
            scope,
            resource,
            blocker.message,
            Some(&blocker.hint),
        );
    }
}
