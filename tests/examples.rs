//! The CI examples in `examples/` and the pipelines in the README: they parse as YAML,
//! take AWS credentials through OIDC rather than stored keys, and the command-line
//! definition accepts every `amishare` command they run.

use std::path::Path;

use serde_yaml::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn parse(path: &str, text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|err| panic!("{path} is not valid YAML: {err}"))
}

/// Keys whose values are shell commands: GitHub Actions' `run`, GitLab CI's scripts.
const SCRIPT_KEYS: [&str; 4] = ["run", "script", "before_script", "after_script"];

/// Collects every shell script in the document: each string under a [`SCRIPT_KEYS`] key.
fn scripts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Mapping(map) => {
            for (key, value) in map {
                if key.as_str().is_some_and(|k| SCRIPT_KEYS.contains(&k)) {
                    strings(value, out);
                } else {
                    scripts(value, out);
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| scripts(v, out)),
        Value::Tagged(tagged) => scripts(&tagged.value, out),
        Value::String(_) | Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Extracts the `amishare` commands from a document's scripts. Each is a line that starts
/// with `amishare `, cut before the first redirection or shell operator, without quotes.
fn amishare_commands(document: &Value) -> Vec<Vec<String>> {
    let mut texts = Vec::new();
    scripts(document, &mut texts);
    let mut commands = Vec::new();
    for text in &texts {
        for line in text.lines() {
            let line = line.trim();
            if !line.starts_with("amishare ") {
                continue;
            }
            let words: Vec<String> = line
                .split_whitespace()
                .take_while(|w| !is_shell_operator(w))
                .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_owned())
                .collect();
            commands.push(words);
        }
    }
    commands
}

fn is_shell_operator(word: &str) -> bool {
    matches!(word, "|" | "||" | "&&" | ";" | "&")
        || word.starts_with('>')
        || word.starts_with("2>")
        || word.starts_with('<')
}

fn check_commands(path: &str, document: &Value) -> Vec<Vec<String>> {
    let commands = amishare_commands(document);
    for words in &commands {
        if let Err(err) = amishare::cli::command().try_get_matches_from(words) {
            panic!(
                "{path}: `{}` is not a valid command:\n{err}",
                words.join(" ")
            );
        }
    }
    commands
}

fn uses(commands: &[Vec<String>], words: &[&str]) -> bool {
    commands
        .iter()
        .any(|c| words.iter().all(|w| c.iter().any(|word| word == w)))
}

fn assert_no_stored_keys(path: &str, text: &str) {
    for secret in [
        "aws-access-key-id",
        "aws-secret-access-key",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(!text.contains(secret), "{path} mentions `{secret}`");
    }
}

#[test]
fn github_workflow_commands_and_oidc() {
    let path = "examples/github-actions.yml";
    let text = read(path);
    let workflow = parse(path, &text);
    let commands = check_commands(path, &workflow);
    assert!(
        uses(
            &commands,
            &["plan", "--format", "markdown", "--detailed-exitcode"]
        ),
        "{commands:?}"
    );
    assert!(
        uses(&commands, &["plan", "--out", "plan.json"]),
        "{commands:?}"
    );
    assert!(uses(&commands, &["apply", "plan.json"]), "{commands:?}");

    assert!(workflow["on"]["pull_request"].is_mapping());
    assert_eq!(workflow["on"]["push"]["branches"][0], "main");
    assert!(text.contains("gh pr comment"), "the plan is not posted");
    assert!(text.contains("actions/upload-artifact"));
    assert!(text.contains("actions/download-artifact"));
    assert_eq!(workflow["jobs"]["apply"]["needs"], "plan-main");
    assert_no_stored_keys(path, &text);

    let Value::Mapping(jobs) = &workflow["jobs"] else {
        panic!("{path}: no jobs");
    };
    for (name, job) in jobs {
        assert_eq!(job["permissions"]["id-token"], "write", "{name:?}");
        let steps = job["steps"].as_sequence().expect("steps");
        let login = steps
            .iter()
            .find(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials@"))
            })
            .unwrap_or_else(|| panic!("{name:?} does not assume a role"));
        assert!(login["with"]["role-to-assume"].is_string(), "{name:?}");
    }
}

#[test]
fn gitlab_pipeline_commands_and_oidc() {
    let path = "examples/gitlab-ci.yml";
    let text = read(path);
    let pipeline = parse(path, &text);
    let commands = check_commands(path, &pipeline);
    assert!(
        uses(
            &commands,
            &["plan", "--format", "markdown", "--detailed-exitcode"]
        ),
        "{commands:?}"
    );
    assert!(
        uses(&commands, &["plan", "--out", "plan.json"]),
        "{commands:?}"
    );
    assert!(uses(&commands, &["apply", "plan.json"]), "{commands:?}");

    let template = &pipeline[".amishare"];
    assert_eq!(
        template["id_tokens"]["AWS_ID_TOKEN"]["aud"],
        "sts.amazonaws.com"
    );
    assert!(pipeline["variables"]["AWS_WEB_IDENTITY_TOKEN_FILE"].is_string());
    for job in ["plan", "plan-main", "apply"] {
        assert_eq!(pipeline[job]["extends"], ".amishare", "{job}");
        assert!(
            pipeline[job]["variables"]["AWS_ROLE_ARN"].is_string(),
            "{job}"
        );
    }
    assert_eq!(pipeline["plan-main"]["artifacts"]["paths"][0], "plan.json");
    assert_eq!(pipeline["apply"]["needs"][0], "plan-main");
    assert!(text.contains("merge_requests/$CI_MERGE_REQUEST_IID/notes"));
    assert_no_stored_keys(path, &text);
}

#[test]
fn readme_pipeline_commands_are_valid() {
    let text = read("README.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    let pipelines: Vec<&String> = blocks.iter().filter(|b| b.contains("amishare ")).collect();
    assert!(!pipelines.is_empty(), "the README shows no pipeline");
    let mut commands = Vec::new();
    for block in pipelines {
        let document = parse("README.md", block);
        commands.extend(check_commands("README.md", &document));
        assert_no_stored_keys("README.md", block);
    }
    assert!(
        uses(
            &commands,
            &["plan", "--detailed-exitcode", "--format", "markdown"]
        ),
        "{commands:?}"
    );
}

#[test]
fn command_check_rejects_unknown_flag() {
    let document: Value = serde_yaml::from_str(
        "run: |\n  amishare plan specs/ --colour never > plan.txt\n  amishare apply plan.json\n",
    )
    .unwrap();
    let commands = amishare_commands(&document);
    assert_eq!(commands.len(), 2);
    assert_eq!(
        commands[0],
        ["amishare", "plan", "specs/", "--colour", "never"]
    );
    assert!(
        amishare::cli::command()
            .try_get_matches_from(&commands[0])
            .is_err()
    );
    assert!(
        amishare::cli::command()
            .try_get_matches_from(&commands[1])
            .is_ok()
    );
}
