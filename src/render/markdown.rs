//! The Markdown form of a plan, for a pull-request or merge-request comment. The summary
//! line, blocked changes and warnings come first. Then come one table of changes per
//! account and region, each key policy diff in a collapsed `<details>` section, and notes.
//!
//! It uses GitHub Flavored Markdown tables, which GitLab renders too, and no colour.
//! Values from the spec and from AWS are escaped, so they cannot break the layout.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{account_name, policy_diff, summary};
use crate::model::{LaunchEntry, Scope};
use crate::plan::{
    Change, CopyChange, Finding, KeyPolicyChange, LaunchChange, Plan, Severity, VolumeChange,
};
use crate::spec::Spec;
use crate::spec::ids::is_unique_principal_id;

/// Renders the plan as Markdown.
pub fn render_markdown(plan: &Plan, spec: &Spec) -> String {
    let mut out = format!("**{}**\n", escape(&summary(plan)));
    findings(&mut out, plan, Severity::Blocked, "Blocked");
    findings(&mut out, plan, Severity::Warning, "Warnings");
    let mut by_scope: BTreeMap<&Scope, Vec<&Change>> = BTreeMap::new();
    for change in &plan.changes {
        by_scope.entry(change.scope()).or_default().push(change);
    }
    for (scope, changes) in by_scope {
        scope_table(&mut out, spec, scope, &changes);
    }
    findings(&mut out, plan, Severity::Note, "Notes");
    out
}

/// One table row: the resource, what happens to it, and the principal concerned.
struct Row {
    resource: String,
    action: String,
    principal: String,
}

fn scope_table(out: &mut String, spec: &Spec, scope: &Scope, changes: &[&Change]) {
    let _ = writeln!(
        out,
        "\n### Account {}{} in {}\n",
        code(&scope.account),
        named(spec.account_name(&scope.account)),
        code(&scope.region)
    );
    out.push_str("| Resource | Change | Principal |\n| --- | --- | --- |\n");
    let mut diffs: Vec<&KeyPolicyChange> = Vec::new();
    for change in changes {
        let rows = match change {
            Change::KeyPolicy(c) => {
                diffs.push(c);
                key_rows(spec, c)
            }
            Change::VolumePermissions(c) => volume_rows(spec, c),
            Change::LaunchPermissions(c) => launch_rows(spec, c),
            Change::Copy(c) => copy_rows(spec, c),
        };
        for row in rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cell(&row.resource),
                cell(&row.action),
                cell(&row.principal)
            );
        }
    }
    for change in diffs {
        key_diff(out, change);
    }
}

fn key_rows(spec: &Spec, change: &KeyPolicyChange) -> Vec<Row> {
    let resource = format!("key {}", code(&change.key_name));
    let member_row = |action: &str, sid: &str, member: &str| {
        let label = if is_unique_principal_id(member) {
            " (unique id of a deleted principal)".to_owned()
        } else {
            named(account_name(spec, member))
        };
        Row {
            resource: resource.clone(),
            action: format!("{action} {}", code(sid)),
            principal: format!("{}{label}", code(member)),
        }
    };
    let mut rows: Vec<Row> = change
        .added
        .iter()
        .map(|(sid, member)| member_row("grant in", sid, member))
        .collect();
    rows.extend(
        change
            .removed
            .iter()
            .map(|(sid, member)| member_row("revoke from", sid, member)),
    );
    rows.extend(change.drop.iter().map(|sid| Row {
        resource: resource.clone(),
        action: format!("remove statement {}", code(sid)),
        principal: "all its members".to_owned(),
    }));
    rows
}

fn volume_rows(spec: &Spec, change: &VolumeChange) -> Vec<Row> {
    let resource = format!(
        "snapshot {} of image {}",
        code(&change.snapshot_id),
        code(&change.image_id)
    );
    let row = |action: &str, account: &String| Row {
        resource: resource.clone(),
        action: format!("{action} create volume permission"),
        principal: format!(
            "account {}{}",
            code(account),
            named(spec.account_name(account))
        ),
    };
    let mut rows: Vec<Row> = change.add.iter().map(|a| row("add", a)).collect();
    rows.extend(change.remove.iter().map(|a| row("remove", a)));
    rows
}

fn launch_rows(spec: &Spec, change: &LaunchChange) -> Vec<Row> {
    let resource = format!(
        "image {}{}",
        code(&change.image_id),
        named(change.image_name.as_deref())
    );
    let row = |action: &str, entry: &LaunchEntry| Row {
        resource: resource.clone(),
        action: format!("{action} launch permission"),
        principal: grantee(spec, entry),
    };
    let mut rows: Vec<Row> = change.add.iter().map(|e| row("add", e)).collect();
    rows.extend(change.remove.iter().map(|e| row("remove", e)));
    rows
}

fn copy_rows(spec: &Spec, change: &CopyChange) -> Vec<Row> {
    let source = format!("image {}", code(&change.request.source_image));
    let action = match &change.pending_image {
        Some(id) => format!("wait for pending copy {}", code(id)),
        None => format!(
            "copy under {}",
            code(
                change
                    .key_name
                    .as_deref()
                    .unwrap_or(&change.request.key_arn)
            )
        ),
    };
    let mut rows = vec![Row {
        resource: source.clone(),
        action,
        principal: String::new(),
    }];
    rows.extend(change.shares.iter().map(|entry| Row {
        resource: source.clone(),
        action: "share the copy".to_owned(),
        principal: grantee(spec, entry),
    }));
    rows
}

fn grantee(spec: &Spec, entry: &LaunchEntry) -> String {
    match entry {
        LaunchEntry::Account(id) => {
            format!("account {}{}", code(id), named(spec.account_name(id)))
        }
        LaunchEntry::Organization(arn) => format!("organization {}", code(arn)),
        LaunchEntry::OrganizationalUnit(arn) => format!("OU {}", code(arn)),
        LaunchEntry::Public => format!("group {} (public)", code("all")),
    }
}

fn key_diff(out: &mut String, change: &KeyPolicyChange) {
    let diff = policy_diff(change);
    let fence = "`".repeat(longest_backtick_run(&diff).max(2) + 1);
    let _ = write!(
        out,
        "\n<details>\n<summary>Key policy of <code>{}</code> ({})</summary>\n\n{fence}diff\n{diff}{fence}\n\n</details>\n",
        html(&change.key_name),
        html(&change.key_arn),
    );
}

fn findings(out: &mut String, plan: &Plan, severity: Severity, title: &str) {
    let selected: Vec<&Finding> = plan
        .findings
        .iter()
        .filter(|f| f.severity == severity)
        .collect();
    if selected.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n### {title}\n");
    for finding in selected {
        let _ = writeln!(
            out,
            "- {} in account {} in {}: {} ({})",
            code(&finding.resource),
            code(&finding.scope.account),
            code(&finding.scope.region),
            escape(&finding.message),
            code(&finding.code),
        );
        if let Some(hint) = &finding.hint {
            let _ = writeln!(out, "  - hint: {}", escape(hint));
        }
    }
}

/// ` (name)`, escaped, when there is a name.
fn named(name: Option<&str>) -> String {
    name.map(|n| format!(" ({})", escape(n)))
        .unwrap_or_default()
}

/// `value` as an inline code span. Its delimiter is one backtick longer than the longest
/// run of backticks inside, and it is padded when `value` starts or ends with one, so any
/// value reads back unchanged.
fn code(value: &str) -> String {
    let fence = "`".repeat(longest_backtick_run(value) + 1);
    let pad = if value.starts_with('`') || value.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{value}{pad}{fence}")
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Text for a table cell: pipes escaped (GitHub Flavored Markdown honours `\|` inside code
/// spans too) and line breaks folded into spaces.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Escapes Markdown and HTML in prose, keeping the code spans that amishare's messages
/// mark with backticks. With an odd number of backticks, every backtick is escaped too.
fn escape(text: &str) -> String {
    let balanced = text.matches('`').count().is_multiple_of(2);
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' if balanced => {
                in_code = !in_code;
                out.push(c);
            }
            _ if in_code => out.push(c),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text for an HTML element such as `<summary>`.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_span_holds_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a"), "`` `a ``");
    }

    #[test]
    fn escape_keeps_code_spans() {
        assert_eq!(
            escape("key `a_b*` is <b>|x|</b>"),
            "key `a_b*` is \\<b\\>\\|x\\|\\</b\\>"
        );
    }

    #[test]
    fn escape_with_odd_backticks_escapes_them() {
        assert_eq!(escape("a ` b_c"), "a \\` b\\_c");
    }

    #[test]
    fn escape_folds_line_breaks() {
        assert_eq!(escape("one\ntwo"), "one two");
    }

    #[test]
    fn cell_escapes_pipes_inside_code() {
        assert_eq!(cell("`a|b`"), "`a\\|b`");
    }

    #[test]
    fn html_escapes_markup() {
        assert_eq!(
            html("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn diff_fence_outgrows_backticks() {
        assert_eq!(longest_backtick_run("a ```` b ` c"), 4);
        assert_eq!(longest_backtick_run("none"), 0);
    }
}
