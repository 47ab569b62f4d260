//! Renders a plan: text for a terminal or a log, Markdown for a pull-request comment, JSON
//! for tools. The renderers are peers with one signature and return the whole output; the
//! CLI writes it.

mod json;
mod markdown;
mod text;

use std::fmt::Write;

pub use json::{FORMAT_VERSION, plan_schema, render_json};
pub use markdown::render_markdown;
pub use text::render_text;

use crate::plan::{Change, KeyPolicyChange, Plan, Severity};
use crate::spec::Spec;

/// An output format of `amishare plan`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines grouped by account, region and resource, styled on a terminal.
    #[default]
    Text,
    /// GitHub Flavored Markdown, for a pull-request or merge-request comment.
    Markdown,
    /// One JSON document, described by `schema/plan.schema.json`.
    Json,
}

/// Renders `plan` in `format`.
pub fn render(format: Format, plan: &Plan, spec: &Spec) -> String {
    match format {
        Format::Text => render_text(plan, spec),
        Format::Markdown => render_markdown(plan, spec),
        Format::Json => render_json(plan, spec),
    }
}

/// Entry and finding counts of a plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub changes: usize,
    /// Entries granted: launch and create-volume permissions, key statement members.
    pub added: usize,
    /// Entries revoked, whole key statements dropped included.
    pub removed: usize,
    pub blocked: usize,
    pub warnings: usize,
    pub notes: usize,
}

/// Counts the entries each change adds and removes, and the findings by severity.
pub fn counts(plan: &Plan) -> Counts {
    let mut counts = Counts {
        changes: plan.changes.len(),
        ..Counts::default()
    };
    for change in &plan.changes {
        let (added, removed) = match change {
            Change::KeyPolicy(c) => (c.added.len(), c.removed.len() + c.drop.len()),
            Change::LaunchPermissions(c) => (c.add.len(), c.remove.len()),
            Change::VolumePermissions(c) => (c.add.len(), c.remove.len()),
            // A copy to make counts as one addition; one already pending adds nothing new.
            Change::Copy(c) => (usize::from(c.pending_image.is_none()), 0),
        };
        counts.added += added;
        counts.removed += removed;
    }
    for finding in &plan.findings {
        match finding.severity {
            Severity::Blocked => counts.blocked += 1,
            Severity::Warning => counts.warnings += 1,
            Severity::Note => counts.notes += 1,
        }
    }
    counts
}

/// Summarizes in one line what the plan does and what it found.
pub fn summary(plan: &Plan) -> String {
    let counts = counts(plan);
    let mut text = if plan.is_empty() && counts.blocked == 0 {
        "No changes: the live state matches the spec.".to_owned()
    } else if plan.is_empty() {
        "No changes to make, but the live state does not match the spec.".to_owned()
    } else {
        format!(
            "Plan: {} to add, {} to remove, in {} change{}.",
            counts.added,
            counts.removed,
            counts.changes,
            plural(counts.changes)
        )
    };
    if counts.blocked > 0 || counts.warnings > 0 {
        let _ = write!(
            text,
            " {} blocked, {} warning{}.",
            counts.blocked,
            counts.warnings,
            plural(counts.warnings)
        );
    }
    text
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The unified diff between the key policy as read and as it will be, with three lines
/// of context and `before` and `after` as file names.
fn policy_diff(change: &KeyPolicyChange) -> String {
    let before = format!("{}\n", change.before);
    let after = format!("{}\n", change.after);
    similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header("before", "after")
        .to_string()
}

/// Extracts the account id from a root principal ARN such as
/// `arn:aws:iam::111111111111:root`.
fn root_account(member: &str) -> Option<&str> {
    member
        .strip_suffix(":root")
        .and_then(|rest| rest.rsplit(':').next())
}

/// Looks up the spec's name for the account a value ends in (`account 222222222222`, a
/// bare id, or a root principal ARN).
fn account_name<'a>(spec: &'a Spec, value: &str) -> Option<&'a str> {
    let id = root_account(value).unwrap_or_else(|| value.rsplit(' ').next().unwrap_or(value));
    spec.account_name(id)
}
