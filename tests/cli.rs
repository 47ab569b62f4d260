//! The binary's offline commands: `validate` and `schema`, and spec errors stopping
//! `plan` and `apply` before any AWS call.

use std::path::Path;
use std::process::{Command, Output};

fn amishare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_amishare"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        // Nothing listens on port 9: a command that reached AWS would fail differently.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("amishare runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn invalid_specs_report_file_path_value_and_fix() {
    let mut names: Vec<_> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/invalid"))
            .expect("specs/invalid exists")
            .map(|e| {
                e.expect("entry")
                    .file_name()
                    .into_string()
                    .expect("utf-8 name")
            })
            .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let path = format!("specs/invalid/{name}");
        let output = amishare(&["validate", &path]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        assert!(
            output.stdout.is_empty(),
            "{name}: stdout holds {}",
            text(&output.stdout)
        );
        let stderr = text(&output.stderr);
        let problems: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: ") && l.contains('['))
            .collect();
        assert!(!problems.is_empty(), "{name}: {stderr}");
        for problem in &problems {
            assert!(
                problem.starts_with(&format!("error: {path}: ")),
                "{name}: no file in {problem}"
            );
        }
        assert_eq!(
            stderr.matches("\n  hint: ").count(),
            problems.len(),
            "{name}: a problem has no hint:\n{stderr}"
        );
        insta::assert_snapshot!(name.trim_end_matches(".yaml"), stderr);
        // plan and apply stop at the same problems, before any AWS call.
        for command in [
            &["plan", &path][..],
            &["apply", "--auto-approve", &path][..],
        ] {
            let output = amishare(command);
            assert_eq!(output.status.code(), Some(1), "{command:?}");
            assert!(output.stdout.is_empty(), "{command:?}");
            assert_eq!(text(&output.stderr), stderr, "{command:?}");
        }
    }
}

#[test]
fn example_spec_is_valid() {
    let output = amishare(&["validate", "specs/example.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("valid"));
}

#[test]
fn example_spec_points_at_schema() {
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/example.yaml"))
            .unwrap();
    let first = example.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        "# yaml-language-server: $schema=../schema/amishare.schema.json"
    );
}

#[test]
fn checked_in_schema_is_current() {
    let output = amishare(&["schema"]);
    assert_eq!(output.status.code(), Some(0));
    let checked_in = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/amishare.schema.json"),
    )
    .unwrap();
    assert!(
        text(&output.stdout) == checked_in,
        "schema/amishare.schema.json is stale: run `amishare schema > schema/amishare.schema.json`"
    );
}

#[test]
fn unquoted_account_id_keeps_leading_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zero.yaml");
    std::fs::write(
        &path,
        "version: 1\naccounts:\n  - {name: a, id: 012345678901}\n",
    )
    .unwrap();
    let spec = amishare::spec::load(&[path]).expect("valid");
    assert_eq!(spec.accounts[0].id, "012345678901");
}

#[test]
fn invalid_spec_stops_plan_and_apply_before_aws() {
    for command in ["plan", "apply"] {
        let output = amishare(&[command, "specs/invalid/organization-forms.yaml"]);
        assert_eq!(output.status.code(), Some(1), "{command}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("nothing was read or changed in AWS"),
            "{command}: {stderr}"
        );
        assert!(
            !stderr.contains("127.0.0.1:9"),
            "{command} reached for AWS: {stderr}"
        );
    }
}

#[test]
fn problems_in_several_files_are_reported_together() {
    let output = amishare(&[
        "validate",
        "specs/invalid/account-id-short.yaml",
        "specs/invalid/tabs.yaml",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("account-id-short.yaml: accounts[0].id"),
        "{stderr}"
    );
    assert!(stderr.contains("tabs.yaml: accounts"), "{stderr}");
}

#[test]
fn stage_files_supply_account_ids() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/stages");
    let load = |stage: &str| {
        amishare::spec::load(&[root.join("common.yaml"), root.join(stage)]).expect("valid")
    };
    let prod = load("prod.yaml");
    let staging = load("staging.yaml");
    assert_eq!(prod.images[0].account, "111111111111");
    assert_eq!(staging.images[0].account, "333333333333");
    assert_eq!(
        prod.images[0].targets[0].grantee,
        amishare::spec::Grantee::Account("222222222222".into())
    );
    assert_eq!(
        staging.images[0].targets[0].grantee,
        amishare::spec::Grantee::Account("444444444444".into())
    );
    let output = amishare(&["validate", "specs/stages/common.yaml"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "common.yaml alone names undeclared accounts"
    );
}

#[test]
fn conflicting_specs_in_a_directory_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let common = "version: 1\naccounts:\n  - {name: factory, id: \"111111111111\"}\n";
    let image = |target: &str| {
        format!(
            "version: 1\nimages:\n  - account: factory\n    region: us-east-1\n    ids: [ami-0123456789abcdef0]\n    share_with:\n      - account: \"{target}\"\n"
        )
    };
    std::fs::write(dir.path().join("a-accounts.yaml"), common).unwrap();
    std::fs::write(dir.path().join("b-team.yaml"), image("222222222222")).unwrap();
    std::fs::write(dir.path().join("c-other-team.yaml"), image("333333333333")).unwrap();
    let output = amishare(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("[duplicate-image]"))
        .unwrap_or_default();
    assert!(
        line.contains("c-other-team.yaml: images[0].ids[0]"),
        "{stderr}"
    );
    assert!(line.contains("b-team.yaml: images[0].ids[0]"), "{stderr}");
}

#[test]
fn usage_errors_exit_one_not_two() {
    // 2 means "changes pending" for plan --detailed-exitcode, so a typo must not return it.
    for args in [
        &["plan", "--detailed-exit-code", "x.yaml"][..],
        &["bogus"][..],
    ] {
        let output = amishare(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(text(&output.stderr).contains("error:"), "{args:?}");
    }
    assert_eq!(amishare(&["--help"]).status.code(), Some(0));
}

#[test]
fn spec_over_size_limit_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    let padding = "# padding\n".repeat(110_000);
    std::fs::write(&path, format!("version: 1\n{padding}")).unwrap();
    for command in ["validate", "plan"] {
        let output = amishare(&[command, path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{command}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains("[spec-too-large]"), "{command}: {stderr}");
        assert!(stderr.contains("big.yaml: spec file is larger"), "{stderr}");
        assert!(stderr.contains("limit of 1048576 bytes"), "{stderr}");
        assert!(stderr.contains("\n  hint: split the spec"), "{stderr}");
        assert!(
            stderr.contains("nothing was read or changed in AWS"),
            "{stderr}"
        );
    }
}

#[test]
fn long_string_aliased_often_is_rejected() {
    // 200 aliases of a 100 kB string: a 100 kB file that would expand to 20 MB.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aliases.yaml");
    let long = "a".repeat(100_000);
    let aliases = vec!["*long"; 200].join(", ");
    let spec = format!(
        "version: 1\naccounts:\n  - {{name: factory, id: \"111111111111\"}}\nimages:\n  - account: factory\n    region: us-east-1\n    ids: [&long \"{long}\", {aliases}]\n"
    );
    std::fs::write(&path, spec).unwrap();
    let output = amishare(&["validate", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("[alias-expansion-too-large]"), "{stderr}");
    assert!(stderr.contains("aliases.yaml: images[0].ids["), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "limit of {} bytes",
            amishare::spec::MAX_EXPANDED_BYTES
        )),
        "{stderr}"
    );
    assert!(stderr.contains("\n  hint: "), "{stderr}");
}

#[test]
fn same_account_in_two_files_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a.yaml");
    let second = dir.path().join("b.yaml");
    std::fs::write(
        &first,
        "version: 1\naccounts:\n  - {name: factory, id: \"111111111111\"}\n",
    )
    .unwrap();
    std::fs::write(
        &second,
        "version: 1\naccounts:\n  - {name: build, id: \"111111111111\"}\n",
    )
    .unwrap();
    let output = amishare(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("[duplicate-account]"))
        .unwrap_or_default();
    assert!(line.contains("b.yaml: accounts[0].id"), "{stderr}");
    assert!(line.contains("as `factory`"), "{stderr}");
    assert!(line.contains("a.yaml: accounts[0]"), "{stderr}");
}

/// Writes `spec` to a file in a new directory and runs `amishare validate` on it.
fn validate_text(spec: &str) -> (String, Option<i32>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, spec).expect("write spec");
    let output = amishare(&["validate", path.to_str().expect("UTF-8 path")]);
    (text(&output.stderr), output.status.code())
}

#[test]
fn huge_value_is_cut_in_messages() {
    let name = "a".repeat(500_000);
    let (stderr, code) = validate_text(&format!(
        "version: 1\naccounts:\n  - {{name: {name}, id: \"111111111111\"}}\n"
    ));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("(500000 characters)"), "{stderr}");
    assert!(stderr.len() < 1000, "{} bytes of errors", stderr.len());
}

#[test]
fn invalid_account_id_is_reported_once() {
    let (stderr, code) = validate_text(
        "version: 1\naccounts:\n  - {name: src, id: 0123_4567_8901}\n  - {name: tgt, id: \"222222222222\"}\nimages:\n  - account: src\n    region: us-east-1\n    ids: [ami-0123456789abcdef0]\n    share_with:\n      - {account: tgt}\n",
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("accounts[0].id"), "{stderr}");
    assert!(!stderr.contains("is not declared"), "{stderr}");
    assert!(stderr.contains("1 problem in the spec"), "{stderr}");
}

#[test]
fn merge_key_gets_its_own_hint() {
    let (stderr, code) = validate_text(
        "version: 1\naccounts:\n  - &a {name: src, id: \"111111111111\"}\n  - {<<: *a, name: tgt}\n",
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("missing field `id`"), "{stderr}");
    assert!(
        stderr.contains("merge keys (`<<`) are not applied"),
        "{stderr}"
    );
}
