//! Reads spec files into raw types. This is the only module that uses serde_yaml.
//!
//! Structural problems (YAML syntax, wrong types, duplicate keys) stop the file at the
//! first one, because serde cannot go on past them. Unknown fields do not stop it: they
//! are collected, so a run reports all of them together with the semantic problems.

use std::io::Read;
use std::path::Path;

use super::diagnostic::Diagnostic;
use super::raw::RawSpec;

/// Largest spec file accepted. A spec listing thousands of images stays far below it;
/// anything bigger is more likely a mistake, such as a generated or binary file.
pub const MAX_SPEC_BYTES: u64 = 1024 * 1024;

/// Reads and parses one spec file. Unknown fields are returned as diagnostics beside the
/// parsed value; any other problem replaces it.
pub fn load_file(path: &Path) -> Result<(RawSpec, Vec<Diagnostic>), Diagnostic> {
    let file = std::fs::File::open(path).map_err(|err| read_error(path, &err))?;
    // Read one byte past the limit through `take`, so a device or pipe that never ends
    // is cut off too: its metadata reports no length.
    let mut bytes = Vec::new();
    file.take(MAX_SPEC_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| read_error(path, &err))?;
    if bytes.len() as u64 > MAX_SPEC_BYTES {
        return Err(Diagnostic::new(
            "spec-too-large",
            path,
            "",
            format!("spec file is larger than the limit of {MAX_SPEC_BYTES} bytes"),
        )
        .hint("split the spec into several files in one directory"));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Diagnostic::new("unreadable-spec", path, "", "spec file is not UTF-8 text")
            .hint("save the spec as UTF-8")
    })?;
    parse_str(path, &text)
}

fn read_error(path: &Path, err: &std::io::Error) -> Diagnostic {
    Diagnostic::new(
        "unreadable-spec",
        path,
        "",
        format!("cannot read spec file: {err}"),
    )
}

/// Parses spec text. `path` is used only to label diagnostics.
pub fn parse_str(path: &Path, text: &str) -> Result<(RawSpec, Vec<Diagnostic>), Diagnostic> {
    if text
        .lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
    {
        return Err(
            Diagnostic::new("empty-spec", path, "", "spec file is empty").hint(
                "start the file with `version: 1`; specs/example.yaml is a commented example",
            ),
        );
    }
    super::expansion::check(path, text)?;
    // serde_yaml does not apply `<<` merge keys, so a merged field reads as missing.
    let merges = text.contains("<<:");
    let mut unknown = Vec::new();
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let mut record_unknown =
        |field: serde_ignored::Path<'_>| unknown.push(super::unknown::diagnostic(path, &field));
    let ignoring = serde_ignored::Deserializer::new(deserializer, &mut record_unknown);
    let raw = serde_path_to_error::deserialize(ignoring).map_err(|err| {
        let path_text = err.path().to_string();
        let inner = err.into_inner();
        structural_error(path, &path_text, &inner, merges)
    })?;
    Ok((raw, unknown))
}

fn structural_error(file: &Path, path: &str, err: &serde_yaml::Error, merges: bool) -> Diagnostic {
    // serde_path_to_error prints `.` for the root.
    let path = if path == "." { "" } else { path };
    // serde_yaml starts some messages with the path itself; it is shown once already.
    let text = readable(&err.to_string());
    let message = text
        .strip_prefix(&format!("{path}: "))
        .unwrap_or(&text)
        .to_owned();
    let hint = if path.is_empty() && message.contains("expected a mapping") {
        "a spec is a mapping that starts with `version: 1`; specs/example.yaml is a commented \
         example"
    } else if message.contains("duplicate") {
        "remove one of the two entries"
    } else if message.contains("missing field") && merges {
        "add the field; YAML merge keys (`<<`) are not applied, so write merged fields out in \
         full"
    } else if message.contains("missing field") {
        "add the field; `amishare schema` lists the required fields"
    } else if message.contains("tab") || message.contains("cannot start any token") {
        "indent with spaces; YAML does not allow tabs for indentation"
    } else if message.contains("more than one document") {
        "keep one YAML document per file; put other specs in files of their own"
    } else if message.contains("invalid type") {
        "check the value's type against `amishare schema`"
    } else {
        "check the YAML syntax at that line"
    };
    Diagnostic::new("invalid-yaml", file, path, message).hint(hint)
}

/// Rewrites serde's wording of types in the words of YAML and the spec.
fn readable(message: &str) -> String {
    let mut text = message.replace("unit value", "null");
    for (from, to) in [("u32", "a number"), ("a boolean", "`true` or `false`")] {
        text = text.replace(&format!("expected {from}"), &format!("expected {to}"));
    }
    // `struct RawImage` and the like name our own types; a user wrote a mapping.
    while let Some(start) = text.find("struct Raw") {
        let end = text[start..]
            .find(|c: char| !c.is_alphanumeric() && c != ' ')
            .map_or(text.len(), |i| start + i);
        text.replace_range(start..end, "a mapping");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> Diagnostic {
        match parse_str(Path::new("t.yaml"), text) {
            Ok((_, unknown)) => panic!("accepted, with {unknown:?}"),
            Err(problem) => problem,
        }
    }

    #[test]
    fn document_that_is_not_a_mapping() {
        for (text, found) in [
            ("- version: 1\n", "sequence"),
            ("amishare\n", "string \"amishare\""),
            ("~\n", "null"),
            ("12\n", "integer"),
        ] {
            let problem = problem(text);
            assert_eq!(problem.code, "invalid-yaml", "{text}");
            assert_eq!(problem.path, "", "{text}");
            assert!(problem.message.contains(found), "{text}: {problem}");
            let hint = problem.hint.unwrap_or_default();
            assert!(hint.contains("`version: 1`"), "{text}: {hint}");
        }
    }

    #[test]
    fn missing_required_fields() {
        let account = "accounts:\n  - {name: factory, id: \"111111111111\"}\n";
        let cases = [
            ("accounts: []\n".to_owned(), "", "version"),
            (
                "version: 1\naccounts:\n  - {id: \"111111111111\"}\n".into(),
                "accounts[0]",
                "name",
            ),
            (
                "version: 1\naccounts:\n  - {name: factory}\n".into(),
                "accounts[0]",
                "id",
            ),
            (
                format!(
                    "version: 1\n{account}keys:\n  - {{account: factory, region: us-east-1, key: alias/k}}\n"
                ),
                "keys[0]",
                "name",
            ),
            (
                format!(
                    "version: 1\n{account}keys:\n  - {{name: k, region: us-east-1, key: alias/k}}\n"
                ),
                "keys[0]",
                "account",
            ),
            (
                format!(
                    "version: 1\n{account}keys:\n  - {{name: k, account: factory, key: alias/k}}\n"
                ),
                "keys[0]",
                "region",
            ),
            (
                format!(
                    "version: 1\n{account}keys:\n  - {{name: k, account: factory, region: us-east-1}}\n"
                ),
                "keys[0]",
                "key",
            ),
            (
                format!(
                    "version: 1\n{account}images:\n  - {{region: us-east-1, ids: [ami-12345678]}}\n"
                ),
                "images[0]",
                "account",
            ),
            (
                format!(
                    "version: 1\n{account}images:\n  - {{account: factory, ids: [ami-12345678]}}\n"
                ),
                "images[0]",
                "region",
            ),
            (
                format!(
                    "version: 1\n{account}images:\n  - {{account: factory, region: us-east-1, ids: [ami-12345678], replicas: [{{key: k}}]}}\n"
                ),
                "images[0].replicas[0]",
                "region",
            ),
            (
                format!(
                    "version: 1\n{account}images:\n  - {{account: factory, region: us-east-1, ids: [ami-12345678], replicas: [{{region: eu-west-1}}]}}\n"
                ),
                "images[0].replicas[0]",
                "key",
            ),
        ];
        for (text, path, field) in cases {
            let problem = problem(&text);
            assert_eq!(problem.path, path, "{text}");
            assert!(
                problem
                    .message
                    .contains(&format!("missing field `{field}`")),
                "{text}: {problem}"
            );
            let hint = problem.hint.unwrap_or_default();
            assert!(hint.contains("add the field"), "{text}: {hint}");
        }
    }
}
