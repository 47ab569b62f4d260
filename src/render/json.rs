//! The JSON form of a plan, for tools. Its schema is generated from the types below and
//! checked in as `schema/plan.schema.json` (`amishare schema --plan` prints it).
//!
//! Changes and findings keep the plan's order, which depends only on the spec and the
//! live state, and every field is always present (`null` when empty), so the same state
//! gives byte-identical output.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{Counts, counts};
use crate::copies::CopyPurpose;
use crate::model::{LaunchEntry, Scope};
use crate::plan::{
    Change, CopyChange, Finding, KeyPolicyChange, LaunchChange, Plan, Severity, VolumeChange,
};
use crate::spec::Spec;

/// Version of the JSON plan format. It changes when a field is removed, renamed or given
/// another meaning; new fields and change kinds may appear within one version.
pub const FORMAT_VERSION: u32 = 1;

/// A plan as `amishare plan --format json` prints it.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(title = "amishare plan", deny_unknown_fields)]
struct PlanDocument {
    /// Version of this format; a reader should reject versions it does not know.
    #[schemars(extend("const" = FORMAT_VERSION))]
    format_version: u32,
    summary: Summary,
    /// Changes to live state, grouped by account and region.
    changes: Vec<JsonChange>,
    /// Blocked changes, warnings and notes, most severe first.
    findings: Vec<JsonFinding>,
}

/// Counts of the entries the plan adds and removes, and of its findings.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct Summary {
    changes: usize,
    /// Entries granted: launch and create-volume permissions, key statement members.
    added: usize,
    /// Entries revoked, whole key statements included.
    removed: usize,
    blocked: usize,
    warnings: usize,
    notes: usize,
}

/// One change to live state, with `kind` naming its kind.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[schemars(rename = "Change", deny_unknown_fields)]
enum JsonChange {
    /// A rewrite of the `amishare-` statements of one key policy.
    KeyPolicy {
        /// The id of the account the change is made in.
        #[schemars(regex(pattern = r"^[0-9]{12}$"))]
        account: String,
        /// The account's name in the spec.
        account_name: Option<String>,
        region: String,
        /// The key's name in the spec.
        key_name: String,
        key_id: String,
        key_arn: String,
        /// Members the managed statements gain.
        added: Vec<StatementMember>,
        /// Members the managed statements lose, unique ids of deleted principals included.
        removed: Vec<StatementMember>,
        /// `Sid`s of managed statements removed whole.
        removed_statements: Vec<String>,
        /// The key policy as read.
        #[schemars(extend("type" = "object"))]
        before: Value,
        /// The key policy as it will be written.
        #[schemars(extend("type" = "object"))]
        after: Value,
    },
    /// createVolumePermission accounts added to and removed from one snapshot.
    VolumePermissions {
        #[schemars(regex(pattern = r"^[0-9]{12}$"))]
        account: String,
        account_name: Option<String>,
        region: String,
        image_id: String,
        snapshot_id: String,
        /// The spec's key for the image, whose grants the targets need.
        key_name: Option<String>,
        /// Account ids.
        add: Vec<String>,
        /// Account ids.
        remove: Vec<String>,
    },
    /// launchPermission entries added to and removed from one image.
    LaunchPermissions {
        #[schemars(regex(pattern = r"^[0-9]{12}$"))]
        account: String,
        account_name: Option<String>,
        region: String,
        image_id: String,
        image_name: Option<String>,
        key_name: Option<String>,
        add: Vec<Grantee>,
        remove: Vec<Grantee>,
    },
    /// A copy of an image to make, or a pending one to wait for.
    Copy {
        /// The account that makes and owns the copy.
        account: String,
        account_name: Option<String>,
        /// The copy's region.
        region: String,
        /// `reencrypt`, `replica`, `target_key` or `kept_by_target`.
        purpose: String,
        source_account: String,
        source_region: String,
        source_image_id: String,
        name: String,
        key_arn: String,
        key_name: Option<String>,
        /// The id of a copy already started, which apply waits for.
        pending_image_id: Option<String>,
        /// Who the copy is shared with once available.
        shares: Vec<Grantee>,
    },
}

/// One member of a managed key policy statement.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct StatementMember {
    /// The statement, such as `amishare-accounts`.
    #[schemars(regex(pattern = "^amishare-"))]
    sid: String,
    /// A principal ARN, an organization id or an `aws:PrincipalOrgPaths` pattern.
    member: String,
}

/// A launchPermission entry, in the form of the spec's `share_with`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
enum Grantee {
    /// An account id.
    Account(#[schemars(regex(pattern = r"^[0-9]{12}$"))] String),
    /// An organization ARN.
    Organization(String),
    /// An organizational unit ARN.
    Ou(String),
    /// `all`: the image is public.
    Group(#[schemars(extend("const" = "all"))] String),
}

/// Something the plan found that is not a change.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Finding", deny_unknown_fields)]
struct JsonFinding {
    severity: JsonSeverity,
    /// Stable kebab-case identifier, such as `aws-managed-key`.
    code: String,
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    account: String,
    region: String,
    /// The image, snapshot or key the finding is about.
    resource: String,
    message: String,
    hint: Option<String>,
}

/// How much a finding matters. `blocked`: a declared change cannot be made until someone
/// acts. `warning`: something to act on, with nothing blocked. `note`: something the plan
/// does that deserves a mention.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Severity")]
enum JsonSeverity {
    Blocked,
    Warning,
    Note,
}

/// Renders the plan as one pretty-printed JSON document with a trailing newline.
pub fn render_json(plan: &Plan, spec: &Spec) -> String {
    let document = PlanDocument {
        format_version: FORMAT_VERSION,
        summary: summary(counts(plan)),
        changes: plan.changes.iter().map(|c| change(c, spec)).collect(),
        findings: plan.findings.iter().map(finding).collect(),
    };
    // serde_json fails only on maps with non-string keys, and these types have none.
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

/// Generates the JSON Schema of [`render_json`]'s output, pretty-printed, with a trailing
/// newline.
pub fn plan_schema() -> String {
    let schema = schemars::schema_for!(PlanDocument);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

fn summary(counts: Counts) -> Summary {
    Summary {
        changes: counts.changes,
        added: counts.added,
        removed: counts.removed,
        blocked: counts.blocked,
        warnings: counts.warnings,
        notes: counts.notes,
    }
}

fn change(change: &Change, spec: &Spec) -> JsonChange {
    match change {
        Change::KeyPolicy(c) => key_policy(c, spec),
        Change::VolumePermissions(c) => volume_permissions(c, spec),
        Change::LaunchPermissions(c) => launch_permissions(c, spec),
        Change::Copy(c) => copy(c, spec),
    }
}

fn copy(c: &CopyChange, spec: &Spec) -> JsonChange {
    let (account, account_name, region) = scope(&c.scope, spec);
    let purpose = match &c.purpose {
        CopyPurpose::Reencrypt => "reencrypt",
        CopyPurpose::Replica => "replica",
        CopyPurpose::TargetKey { .. } => "target_key",
        CopyPurpose::KeptByTarget { .. } => "kept_by_target",
    };
    JsonChange::Copy {
        account,
        account_name,
        region,
        purpose: purpose.to_owned(),
        source_account: c.request.source.account.clone(),
        source_region: c.request.source.region.clone(),
        source_image_id: c.request.source_image.clone(),
        name: c.request.name.clone(),
        key_arn: c.request.key_arn.clone(),
        key_name: c.key_name.clone(),
        pending_image_id: c.pending_image.clone(),
        shares: c.shares.iter().map(grantee).collect(),
    }
}

fn key_policy(c: &KeyPolicyChange, spec: &Spec) -> JsonChange {
    let (account, account_name, region) = scope(&c.scope, spec);
    JsonChange::KeyPolicy {
        account,
        account_name,
        region,
        key_name: c.key_name.clone(),
        key_id: c.key_id.clone(),
        key_arn: c.key_arn.clone(),
        added: members(&c.added),
        removed: members(&c.removed),
        removed_statements: c.drop.iter().cloned().collect(),
        before: document(&c.before),
        after: document(&c.after),
    }
}

fn volume_permissions(c: &VolumeChange, spec: &Spec) -> JsonChange {
    let (account, account_name, region) = scope(&c.scope, spec);
    JsonChange::VolumePermissions {
        account,
        account_name,
        region,
        image_id: c.image_id.clone(),
        snapshot_id: c.snapshot_id.clone(),
        key_name: c.key_name.clone(),
        add: c.add.clone(),
        remove: c.remove.clone(),
    }
}

fn launch_permissions(c: &LaunchChange, spec: &Spec) -> JsonChange {
    let (account, account_name, region) = scope(&c.scope, spec);
    JsonChange::LaunchPermissions {
        account,
        account_name,
        region,
        image_id: c.image_id.clone(),
        image_name: c.image_name.clone(),
        key_name: c.key_name.clone(),
        add: c.add.iter().map(grantee).collect(),
        remove: c.remove.iter().map(grantee).collect(),
    }
}

fn scope(scope: &Scope, spec: &Spec) -> (String, Option<String>, String) {
    (
        scope.account.clone(),
        spec.account_name(&scope.account).map(str::to_owned),
        scope.region.clone(),
    )
}

fn members(pairs: &[(String, String)]) -> Vec<StatementMember> {
    pairs
        .iter()
        .map(|(sid, member)| StatementMember {
            sid: sid.clone(),
            member: member.clone(),
        })
        .collect()
}

/// Parses a policy into a JSON object. The plan stores it as amishare printed it from a
/// parsed policy, so it parses. Should it not, the text is kept as a string, not lost.
fn document(policy: &str) -> Value {
    serde_json::from_str(policy).unwrap_or_else(|_| Value::String(policy.to_owned()))
}

fn grantee(entry: &LaunchEntry) -> Grantee {
    match entry {
        LaunchEntry::Account(id) => Grantee::Account(id.clone()),
        LaunchEntry::Organization(arn) => Grantee::Organization(arn.clone()),
        LaunchEntry::OrganizationalUnit(arn) => Grantee::Ou(arn.clone()),
        LaunchEntry::Public => Grantee::Group("all".to_owned()),
    }
}

fn finding(finding: &Finding) -> JsonFinding {
    JsonFinding {
        severity: match finding.severity {
            Severity::Blocked => JsonSeverity::Blocked,
            Severity::Warning => JsonSeverity::Warning,
            Severity::Note => JsonSeverity::Note,
        },
        code: finding.code.clone(),
        account: finding.scope.account.clone(),
        region: finding.scope.region.clone(),
        resource: finding.resource.clone(),
        message: finding.message.clone(),
        hint: finding.hint.clone(),
    }
}
