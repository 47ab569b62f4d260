//! Diagnostics for unknown fields: where the field is, and which fields are accepted there.

use std::path::Path;

use serde_json::Value;

use super::diagnostic::Diagnostic;
use super::raw::RawSpec;

/// One step of a field path: a field of a mapping or an element of a sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Field(String),
    Element(usize),
}

/// Builds the diagnostic for a field the spec types do not have. The hint suggests the
/// closest accepted field, or lists the accepted fields when none is close.
pub(super) fn diagnostic(file: &Path, field: &serde_ignored::Path<'_>) -> Diagnostic {
    let steps = steps(field);
    let path = format_path(&steps);
    let Some((Step::Field(name), parent)) = steps.split_last() else {
        return Diagnostic::new("unknown-field", file, path, "unknown field")
            .hint("remove it; `amishare schema` lists every field");
    };
    let accepted = accepted_fields(parent);
    let hint = match closest(name, &accepted) {
        Some(known) => format!("rename it to `{known}` if that is what you meant, or remove it"),
        None if accepted.is_empty() => {
            "remove it or fix its spelling; `amishare schema` lists every field".to_owned()
        }
        None => {
            let list: Vec<_> = accepted.iter().map(|f| format!("`{f}`")).collect();
            format!(
                "remove it or fix its spelling; the fields here are {}",
                list.join(", ")
            )
        }
    };
    Diagnostic::new(
        "unknown-field",
        file,
        path,
        format!("unknown field `{name}`"),
    )
    .hint(hint)
}

fn steps(path: &serde_ignored::Path<'_>) -> Vec<Step> {
    use serde_ignored::Path;
    match path {
        Path::Root => Vec::new(),
        Path::Seq { parent, index } => {
            let mut steps = steps(parent);
            steps.push(Step::Element(*index));
            steps
        }
        Path::Map { parent, key } => {
            let mut steps = steps(parent);
            steps.push(Step::Field(key.clone()));
            steps
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => steps(parent),
    }
}

/// Formats steps the way users write field paths: `images[1].share_with`.
fn format_path(steps: &[Step]) -> String {
    let mut text = String::new();
    for step in steps {
        match step {
            Step::Field(name) if text.is_empty() => text.push_str(name),
            Step::Field(name) => {
                text.push('.');
                text.push_str(name);
            }
            Step::Element(index) => text.push_str(&format!("[{index}]")),
        }
    }
    text
}

/// Lists the fields of the mapping at `steps`, read from the spec's JSON Schema. Empty
/// when the schema has no mapping with fixed fields there.
fn accepted_fields(steps: &[Step]) -> Vec<String> {
    let schema = schemars::schema_for!(RawSpec);
    let root = schema.as_value();
    let mut node = resolve(root, root);
    for step in steps {
        let next = match step {
            Step::Field(name) => node.get("properties").and_then(|p| p.get(name)),
            Step::Element(_) => node.get("items"),
        };
        let Some(next) = next else {
            return Vec::new();
        };
        node = resolve(root, next);
    }
    node.get("properties")
        .and_then(Value::as_object)
        .map(|fields| fields.keys().cloned().collect())
        .unwrap_or_default()
}

/// Follows `$ref` and skips the null branch that schemars writes for an `Option`.
fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    loop {
        if let Some(pointer) = node.get("$ref").and_then(Value::as_str) {
            match root.pointer(pointer.trim_start_matches('#')) {
                Some(target) => node = target,
                None => return node,
            }
        } else if let Some(branches) = node.get("anyOf").and_then(Value::as_array) {
            let not_null = branches
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) != Some("null"));
            match not_null {
                Some(branch) => node = branch,
                None => return node,
            }
        } else {
            return node;
        }
    }
}

/// Finds the accepted field that `name` most likely misspells: one within an edit distance
/// of about a third of its length, or else one that `name` begins (`role` for `role_arn`).
fn closest<'a>(name: &str, accepted: &'a [String]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let max_distance = (lower.chars().count() / 3).max(1);
    let by_distance = accepted
        .iter()
        .map(|field| (strsim::damerau_levenshtein(&lower, field), field))
        .filter(|(distance, _)| *distance <= max_distance)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, field)| field.as_str());
    by_distance.or_else(|| {
        accepted
            .iter()
            .find(|field| lower.len() >= 3 && field.starts_with(&lower))
            .map(String::as_str)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(path: &str) -> Vec<Step> {
        path.split('.')
            .map(|part| match part.parse() {
                Ok(index) => Step::Element(index),
                Err(_) => Step::Field(part.to_owned()),
            })
            .collect()
    }

    #[test]
    fn fields_at_each_level() {
        let top = accepted_fields(&[]);
        assert_eq!(top, ["version", "settings", "accounts", "keys", "images"]);
        assert!(accepted_fields(&field("settings")).contains(&"prune".to_owned()));
        assert!(accepted_fields(&field("accounts.0")).contains(&"role_arn".to_owned()));
        assert!(accepted_fields(&field("keys.0")).contains(&"region".to_owned()));
        assert!(accepted_fields(&field("images.0")).contains(&"share_with".to_owned()));
        assert!(accepted_fields(&field("images.0.select")).contains(&"newest".to_owned()));
        assert!(accepted_fields(&field("images.0.replicas.0")).contains(&"key".to_owned()));
        let share = accepted_fields(&field("images.0.share_with.0"));
        assert!(share.contains(&"keep_copy_under".to_owned()));
        assert!(accepted_fields(&field("images.0.select.tags")).is_empty());
        assert!(accepted_fields(&field("nowhere.0")).is_empty());
    }

    #[test]
    fn closest_field_to_misspelling() {
        let share = accepted_fields(&field("images.0.share_with.0"));
        assert_eq!(closest("cpy", &share), Some("copy"));
        assert_eq!(closest("Account", &share), Some("account"));
        assert_eq!(closest("copy-under", &share), Some("copy_under"));
        let account = accepted_fields(&field("accounts.0"));
        assert_eq!(closest("role", &account), Some("role_arn"));
        assert_eq!(closest("roleArn", &account), Some("role_arn"));
        let settings = accepted_fields(&field("settings"));
        assert_eq!(closest("dry_run", &settings), None);
        let top = accepted_fields(&[]);
        assert_eq!(closest("colour", &top), None);
        assert_eq!(closest("image", &top), Some("images"));
    }

    #[test]
    fn path_format() {
        assert_eq!(
            format_path(&field("images.1.share_with.0.cpy")),
            "images[1].share_with[0].cpy"
        );
        assert_eq!(format_path(&field("colour")), "colour");
    }
}
