//! The text form of a plan: one line per change, grouped by account, region and
//! resource, with a unified diff of each key policy and a summary line.
//!
//! The text carries ANSI styles; the output layer strips them when stdout is not a
//! terminal or `NO_COLOR` is set, and every line reads the same without them.

use std::collections::BTreeMap;
use std::fmt::Write;

use anstyle::{AnsiColor, Style};

use super::{account_name, policy_diff, summary};
use crate::model::Scope;
use crate::plan::{Change, CopyChange, Finding, KeyPolicyChange, Plan, Severity};
use crate::spec::Spec;
use crate::spec::ids::is_unique_principal_id;

const ADD: Style = AnsiColor::Green.on_default();
const REMOVE: Style = AnsiColor::Red.on_default();
const CHANGE: Style = AnsiColor::Yellow.on_default();
const HEADING: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

/// Renders the plan as text for a terminal or a log.
pub fn render_text(plan: &Plan, spec: &Spec) -> String {
    let mut out = String::new();
    let mut by_scope: BTreeMap<&Scope, Vec<&Change>> = BTreeMap::new();
    for change in &plan.changes {
        by_scope.entry(change.scope()).or_default().push(change);
    }
    for (scope, changes) in by_scope {
        scope_heading(&mut out, spec, scope);
        let mut last_image: Option<&str> = None;
        for change in changes {
            match change {
                Change::KeyPolicy(c) => key_policy(&mut out, spec, c),
                Change::Copy(c) => copy(&mut out, spec, c),
                Change::LaunchPermissions(c) => {
                    image_heading(
                        &mut out,
                        &mut last_image,
                        &c.image_id,
                        c.image_name.as_deref(),
                    );
                    for entry in &c.add {
                        line(
                            &mut out,
                            4,
                            ADD,
                            '+',
                            &format!(
                                "launch permission: {entry}{}",
                                name_of(spec, &entry.to_string())
                            ),
                        );
                    }
                    for entry in &c.remove {
                        line(
                            &mut out,
                            4,
                            REMOVE,
                            '-',
                            &format!(
                                "launch permission: {entry}{}",
                                name_of(spec, &entry.to_string())
                            ),
                        );
                    }
                }
                Change::VolumePermissions(c) => {
                    image_heading(&mut out, &mut last_image, &c.image_id, None);
                    let _ = writeln!(out, "    snapshot {}", c.snapshot_id);
                    for account in &c.add {
                        line(
                            &mut out,
                            6,
                            ADD,
                            '+',
                            &format!(
                                "create volume permission: account {account}{}",
                                name_of(spec, account)
                            ),
                        );
                    }
                    for account in &c.remove {
                        line(
                            &mut out,
                            6,
                            REMOVE,
                            '-',
                            &format!(
                                "create volume permission: account {account}{}",
                                name_of(spec, account)
                            ),
                        );
                    }
                }
            }
        }
        out.push('\n');
    }
    findings(&mut out, plan, Severity::Blocked, "Blocked", '!');
    findings(&mut out, plan, Severity::Warning, "Warnings", '!');
    findings(&mut out, plan, Severity::Note, "Notes", '*');
    let _ = writeln!(out, "{HEADING}{}{HEADING:#}", summary(plan));
    out
}

fn scope_heading(out: &mut String, spec: &Spec, scope: &Scope) {
    let name = spec
        .account_name(&scope.account)
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{HEADING}account {}{name} in {}{HEADING:#}",
        scope.account, scope.region
    );
}

fn image_heading<'a>(
    out: &mut String,
    last: &mut Option<&'a str>,
    image_id: &'a str,
    name: Option<&str>,
) {
    if *last == Some(image_id) {
        return;
    }
    *last = Some(image_id);
    let name = name.map(|n| format!(" ({n})")).unwrap_or_default();
    let _ = writeln!(out, "  image {image_id}{name}");
}

fn line(out: &mut String, indent: usize, style: Style, sign: char, text: &str) {
    let _ = writeln!(out, "{:indent$}{style}{sign} {text}{style:#}", "");
}

fn copy(out: &mut String, spec: &Spec, change: &CopyChange) {
    let request = &change.request;
    let key = change.key_name.as_deref().map_or_else(
        || format!("`{}`", request.key_arn),
        |n| format!("`{n}` ({})", request.key_arn),
    );
    let from = format!(
        "{} of account {} in {}",
        request.source_image, request.source.account, request.source.region
    );
    match &change.pending_image {
        Some(id) => line(
            out,
            2,
            CHANGE,
            '~',
            &format!("wait for copy {id} of {from}, pending under key {key}"),
        ),
        None => line(
            out,
            2,
            ADD,
            '+',
            &format!("copy {from} as `{}` under key {key}", request.name),
        ),
    }
    for entry in &change.shares {
        let _ = writeln!(
            out,
            "      then share with {entry}{}",
            name_of(spec, &entry.to_string())
        );
    }
}

/// ` (name)` when `value` ends in an account id the spec names.
fn name_of(spec: &Spec, value: &str) -> String {
    account_name(spec, value)
        .map(|n| format!(" ({n})"))
        .unwrap_or_default()
}

fn key_policy(out: &mut String, spec: &Spec, change: &KeyPolicyChange) {
    let _ = writeln!(
        out,
        "  {CHANGE}~ key policy of `{}` ({}){CHANGE:#}",
        change.key_name, change.key_arn
    );
    for (sid, member) in &change.added {
        line(
            out,
            4,
            ADD,
            '+',
            &format!("{sid}: {member}{}", name_of(spec, member)),
        );
    }
    for (sid, member) in &change.removed {
        let note = if is_unique_principal_id(member) {
            " (unique id of a deleted principal)".to_owned()
        } else {
            name_of(spec, member)
        };
        line(out, 4, REMOVE, '-', &format!("{sid}: {member}{note}"));
    }
    for sid in &change.drop {
        line(out, 4, REMOVE, '-', &format!("{sid}: whole statement"));
    }
    for text in policy_diff(change).lines() {
        let style = match text.chars().next() {
            Some('+') => ADD,
            Some('-') => REMOVE,
            Some('@') => DIM,
            _ => Style::new(),
        };
        let _ = writeln!(out, "      {style}{text}{style:#}");
    }
}

fn findings(out: &mut String, plan: &Plan, severity: Severity, title: &str, mark: char) {
    let selected: Vec<&Finding> = plan
        .findings
        .iter()
        .filter(|f| f.severity == severity)
        .collect();
    if selected.is_empty() {
        return;
    }
    let style = if severity == Severity::Note {
        Style::new()
    } else {
        CHANGE
    };
    let _ = writeln!(out, "{HEADING}{title}:{HEADING:#}");
    for finding in selected {
        let _ = writeln!(
            out,
            "  {style}{mark} {} {}: {}: {} [{}]{style:#}",
            finding.scope.account,
            finding.scope.region,
            finding.resource,
            finding.message,
            finding.code
        );
        if let Some(hint) = &finding.hint {
            let _ = writeln!(out, "    hint: {hint}");
        }
    }
    out.push('\n');
}
