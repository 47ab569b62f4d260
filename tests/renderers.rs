//! Every renderer (text, Markdown, JSON) over plans that cover each change kind, blocked
//! changes, warnings, notes and an empty plan, and the JSON form against its schema.
//! Plans come from the in-memory AWS through `observe` and `plan`, as in a real run.

use std::path::Path;

use amishare::aws::memory::MemoryCloud;
use amishare::model::{KeyManager, LaunchEntry, Scope, Snapshot};
use amishare::observe::observe;
use amishare::plan::{Plan, Severity, plan};
use amishare::render::{plan_schema, render_json, render_markdown, render_text};
use amishare::spec::{self, Spec};
use serde_json::Value;

const FACTORY: &str = "111111111111";
const REGION: &str = "us-east-1";
const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const MANAGED_KEY_ID: &str = "99999999-12ab-34cd-56ef-1234567890ab";
const ORG: &str = "arn:aws:organizations::111111111111:organization/o-abcde12345";

const ACTIONS: &str = r#"["kms:CreateGrant","kms:Decrypt","kms:DescribeKey","kms:GenerateDataKeyWithoutPlaintext","kms:ReEncrypt*"]"#;

/// Builds a key policy with the owner's statement and then `managed` (statement JSON).
fn policy(managed: &str) -> String {
    let separator = if managed.is_empty() { "" } else { "," };
    format!(
        r#"{{"Version":"2012-10-17","Id":"key-default-1","Statement":[
 {{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111111111111:root"}},"Action":"kms:*","Resource":"*"}}{separator}{managed}]}}"#
    )
}

fn accounts_statement(principals: &str) -> String {
    format!(
        r#"{{"Sid":"amishare-accounts","Effect":"Allow","Principal":{{"AWS":{principals}}},"Action":{ACTIONS},"Resource":"*"}}"#
    )
}

fn scope() -> Scope {
    Scope::new(FACTORY, REGION)
}

fn snapshot(id: &str, key_arn: Option<&str>) -> Snapshot {
    Snapshot {
        id: id.to_owned(),
        encrypted: key_arn.is_some(),
        kms_key_id: key_arn.map(str::to_owned),
    }
}

async fn planned(cloud: &MemoryCloud, name: &str, text: &str) -> (Plan, Spec) {
    let spec = spec::load_str(Path::new(name), text).expect("valid spec");
    let observed = observe(cloud, &spec).await.expect("observed");
    (plan(&spec, &observed), spec)
}

const EVERY_KIND_SPEC: &str = r#"
version: 1
settings: {prune: true, allow_public: true}
accounts:
  - {name: factory, id: "111111111111"}
  - {name: prod, id: "222222222222"}
keys:
  - {name: golden, account: factory, region: us-east-1, key: alias/golden}
images:
  - account: factory
    region: us-east-1
    ids: [ami-0123456789abcdef0, ami-0123456789abcdef1]
    key: golden
    share_with:
      - {account: prod, copy: true}
      - {organization: "arn:aws:organizations::111111111111:organization/o-abcde12345"}
      - {ou: "arn:aws:organizations::111111111111:ou/o-abcde12345/ou-ab12-abcdefgh"}
  - account: factory
    region: us-east-1
    ids: [ami-0123456789abcdef2]
    share_with:
      - {group: all}
"#;

/// Key policy, launch and create-volume changes, additions and removals, a public
/// share, an orphaned principal (a note) and an image under an AWS managed key (blocked).
async fn every_change_kind() -> (Plan, Spec) {
    let cloud = MemoryCloud::new();
    let key = cloud.add_key(
        &scope(),
        KEY_ID,
        Some("alias/golden"),
        KeyManager::Customer,
        &policy(&accounts_statement(
            r#"["arn:aws:iam::444444444444:root","AROAEXAMPLEID12345678"]"#,
        )),
    );
    let managed = cloud.add_key(
        &scope(),
        MANAGED_KEY_ID,
        Some("alias/aws/ebs"),
        KeyManager::Aws,
        "{}",
    );
    cloud.add_image(
        &scope(),
        "ami-0123456789abcdef0",
        &[snapshot("snap-0123456789abcdef0", Some(&key))],
    );
    cloud.add_image(
        &scope(),
        "ami-0123456789abcdef1",
        &[snapshot("snap-0123456789abcdef1", Some(&managed))],
    );
    cloud.add_image(
        &scope(),
        "ami-0123456789abcdef2",
        &[snapshot("snap-0123456789abcdef2", None)],
    );
    cloud.set_launch_permissions(
        &scope(),
        "ami-0123456789abcdef0",
        &[LaunchEntry::Account("333333333333".into())],
    );
    cloud.set_volume_permissions(&scope(), "snap-0123456789abcdef0", &["333333333333"]);
    cloud.set_volume_permissions(&scope(), "snap-0123456789abcdef2", &["333333333333"]);
    planned(&cloud, "every-kind.yaml", EVERY_KIND_SPEC).await
}

const WARNINGS_SPEC: &str = r#"
version: 1
accounts:
  - {name: factory, id: "111111111111"}
  - {name: prod, id: "222222222222"}
  - {name: staging, id: "333333333333"}
keys:
  - {name: golden, account: factory, region: us-east-1, key: alias/golden}
images:
  - account: factory
    region: us-east-1
    ids: [ami-0123456789abcdef0]
    key: golden
    share_with:
      - {account: prod, copy: true}
      - {account: staging}
"#;

/// Pruning off: undeclared launch, create-volume and key grants are kept as warnings,
/// while one declared target is still to be added.
async fn warnings() -> (Plan, Spec) {
    let cloud = MemoryCloud::new();
    let key = cloud.add_key(
        &scope(),
        KEY_ID,
        Some("alias/golden"),
        KeyManager::Customer,
        &policy(&accounts_statement(
            r#"["arn:aws:iam::333333333333:root","arn:aws:iam::555555555555:root"]"#,
        )),
    );
    cloud.add_image(
        &scope(),
        "ami-0123456789abcdef0",
        &[snapshot("snap-0123456789abcdef0", Some(&key))],
    );
    cloud.set_launch_permissions(
        &scope(),
        "ami-0123456789abcdef0",
        &[
            LaunchEntry::Account("333333333333".into()),
            LaunchEntry::Account("555555555555".into()),
        ],
    );
    cloud.set_volume_permissions(&scope(), "snap-0123456789abcdef0", &["555555555555"]);
    planned(&cloud, "warnings.yaml", WARNINGS_SPEC).await
}

const BLOCKED_SPEC: &str = r#"
version: 1
accounts:
  - {name: factory, id: "111111111111"}
  - {name: prod, id: "222222222222"}
keys:
  - {name: golden, account: factory, region: us-east-1, key: alias/golden}
images:
  - account: factory
    region: us-east-1
    ids: [ami-0123456789abcdef0]
    key: golden
    share_with:
      - {account: prod}
"#;

/// Nothing to change: the only image is under a key that is pending deletion.
async fn blocked_only() -> (Plan, Spec) {
    let cloud = MemoryCloud::new();
    let key = cloud.add_key(
        &scope(),
        KEY_ID,
        Some("alias/golden"),
        KeyManager::Customer,
        &policy(""),
    );
    cloud.set_key_state(&scope(), KEY_ID, "PendingDeletion");
    cloud.add_image(
        &scope(),
        "ami-0123456789abcdef0",
        &[snapshot("snap-0123456789abcdef0", Some(&key))],
    );
    planned(&cloud, "blocked.yaml", BLOCKED_SPEC).await
}

async fn empty() -> (Plan, Spec) {
    planned(&MemoryCloud::new(), "empty.yaml", "version: 1\n").await
}

fn text(plan: &Plan, spec: &Spec) -> String {
    anstream::adapter::strip_str(&render_text(plan, spec)).to_string()
}

macro_rules! snapshots {
    ($($name:ident: $render:ident of $scenario:ident;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (plan, spec) = $scenario().await;
                insta::assert_snapshot!($render(&plan, &spec));
            }
        )*
    };
}

snapshots! {
    text_every_change_kind: text of every_change_kind;
    text_warnings: text of warnings;
    text_blocked_only: text of blocked_only;
    text_empty: text of empty;
    markdown_every_change_kind: render_markdown of every_change_kind;
    markdown_warnings: render_markdown of warnings;
    markdown_blocked_only: render_markdown of blocked_only;
    markdown_empty: render_markdown of empty;
    json_every_change_kind: render_json of every_change_kind;
    json_warnings: render_json of warnings;
    json_blocked_only: render_json of blocked_only;
    json_empty: render_json of empty;
}

#[tokio::test]
async fn scenarios_cover_every_kind_and_severity() {
    let (plan, _) = every_change_kind().await;
    let json: Value = serde_json::from_str(&render_json(&plan, &Spec::default())).unwrap();
    let kinds: Vec<&str> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    for kind in ["key_policy", "launch_permissions", "volume_permissions"] {
        assert!(kinds.contains(&kind), "no {kind} change in {kinds:?}");
    }
    let severities =
        |plan: &Plan| -> Vec<Severity> { plan.findings.iter().map(|f| f.severity).collect() };
    assert!(severities(&plan).contains(&Severity::Blocked));
    assert!(severities(&plan).contains(&Severity::Note));
    let (plan, _) = warnings().await;
    assert!(!plan.is_empty());
    assert!(severities(&plan).contains(&Severity::Warning));
    let (plan, _) = blocked_only().await;
    assert!(plan.is_empty());
    assert!(severities(&plan).iter().all(|s| *s == Severity::Blocked));
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/plan.schema.json"),
    )
    .expect("schema/plan.schema.json exists");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

fn schema_errors(validator: &jsonschema::Validator, document: &Value) -> Vec<String> {
    validator
        .iter_errors(document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[tokio::test]
async fn json_output_matches_schema() {
    let validator = validator();
    for (name, (plan, spec)) in [
        ("every change kind", every_change_kind().await),
        ("warnings", warnings().await),
        ("blocked only", blocked_only().await),
        ("empty", empty().await),
    ] {
        let document: Value = serde_json::from_str(&render_json(&plan, &spec)).unwrap();
        let errors = schema_errors(&validator, &document);
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[tokio::test]
async fn schema_rejects_unknown_kind_and_fields() {
    let validator = validator();
    let (plan, spec) = every_change_kind().await;
    let document: Value = serde_json::from_str(&render_json(&plan, &spec)).unwrap();

    let mut bad_kind = document.clone();
    bad_kind["changes"][0]["kind"] = "rename_image".into();
    assert!(!schema_errors(&validator, &bad_kind).is_empty());

    let mut extra_field = document.clone();
    extra_field["findings"][0]["colour"] = "red".into();
    assert!(!schema_errors(&validator, &extra_field).is_empty());

    let mut other_version = document.clone();
    other_version["format_version"] = 2.into();
    assert!(!schema_errors(&validator, &other_version).is_empty());

    let mut bad_account = document;
    bad_account["changes"][0]["account"] = "factory".into();
    assert!(!schema_errors(&validator, &bad_account).is_empty());
}

#[test]
fn checked_in_plan_schema_is_current() {
    let checked_in = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/plan.schema.json"),
    )
    .unwrap_or_default();
    assert!(
        plan_schema() == checked_in,
        "schema/plan.schema.json is stale: run `amishare schema --plan > schema/plan.schema.json`"
    );
}

#[tokio::test]
async fn json_is_byte_identical_across_runs() {
    let (first_plan, first_spec) = every_change_kind().await;
    let (second_plan, second_spec) = every_change_kind().await;
    let first = render_json(&first_plan, &first_spec);
    let second = render_json(&second_plan, &second_spec);
    assert!(first == second, "two runs differ:\n{first}\n---\n{second}");
}

#[tokio::test]
async fn json_ignores_the_order_state_was_created_in() {
    let seed = |reversed: bool| {
        let cloud = MemoryCloud::new();
        let mut ids = vec!["ami-0123456789abcdef2", "ami-0123456789abcdef0"];
        if reversed {
            ids.reverse();
        }
        for id in ids {
            let snapshot_id = id.replace("ami-", "snap-");
            cloud.add_image(&scope(), id, &[snapshot(&snapshot_id, None)]);
            cloud.set_launch_permissions(
                &scope(),
                id,
                &[
                    LaunchEntry::Account("555555555555".into()),
                    LaunchEntry::Organization(ORG.into()),
                ],
            );
        }
        cloud
    };
    let spec_text = "version: 1\nsettings: {prune: true}\naccounts:\n  - {name: factory, id: \"111111111111\"}\nimages:\n  - {account: factory, region: us-east-1, ids: [ami-0123456789abcdef2, ami-0123456789abcdef0], share_with: [{account: \"222222222222\"}]}\n";
    let (forward_plan, spec) = planned(&seed(false), "order.yaml", spec_text).await;
    let (reversed_plan, _) = planned(&seed(true), "order.yaml", spec_text).await;
    assert_eq!(
        render_json(&forward_plan, &spec),
        render_json(&reversed_plan, &spec)
    );
}

#[tokio::test]
async fn markdown_has_no_colour_codes() {
    for (plan, spec) in [
        every_change_kind().await,
        warnings().await,
        blocked_only().await,
    ] {
        let markdown = render_markdown(&plan, &spec);
        assert!(!markdown.contains('\u{1b}'), "{markdown}");
    }
}

#[tokio::test]
async fn markdown_key_diff_is_collapsed() {
    let (plan, spec) = every_change_kind().await;
    let markdown = render_markdown(&plan, &spec);
    let details = markdown.find("<details>").expect("a details section");
    let diff = markdown.find("```diff\n").expect("a diff block");
    let end = markdown.find("</details>").expect("the section ends");
    assert!(details < diff, "{markdown}");
    assert!(diff < end, "{markdown}");
}

#[tokio::test]
async fn markdown_puts_blocked_and_warnings_first() {
    let (plan, spec) = every_change_kind().await;
    let markdown = render_markdown(&plan, &spec);
    let summary = markdown.lines().next().unwrap_or_default();
    assert!(summary.starts_with("**Plan: "), "{summary}");
    let blocked = markdown.find("### Blocked").expect("blocked section");
    let changes = markdown.find("| Resource |").expect("changes table");
    let notes = markdown.find("### Notes").expect("notes section");
    assert!(blocked < changes, "{markdown}");
    assert!(changes < notes, "{markdown}");

    let (plan, spec) = warnings().await;
    let markdown = render_markdown(&plan, &spec);
    let warnings = markdown.find("### Warnings").expect("warnings section");
    let changes = markdown.find("| Resource |").expect("changes table");
    assert!(warnings < changes, "{markdown}");
}
