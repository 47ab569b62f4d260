//! Saved plans against the in-memory AWS: what they contain, how they are distinguished
//! from specs, and which changes of live state make them stale. Also the binary's
//! refusal to apply specs without confirmation when stdin is not a terminal, and its
//! hint when AWS cannot be reached.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use amishare::aws::memory::MemoryCloud;
use amishare::aws::{AwsError, Cloud};
use amishare::model::{KeyManager, LaunchEntry, Scope, Snapshot};
use amishare::observe::{Observed, ObservedKey, observe};
use amishare::plan::{Change, plan};
use amishare::render::render_json;
use amishare::saved::{
    self, Resource, ResourceKind, SAVED_PLAN_VERSION, SavedPlan, SavedPlanError, SpecSource,
};
use amishare::spec::{self, Spec};

const FACTORY: &str = "111111111111";
const REGION: &str = "us-east-1";
const IMAGE: &str = "ami-0123456789abcdef0";
const SNAPSHOT: &str = "snap-0123456789abcdef0";
const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"}]}"#;

const SPEC: &str = r#"version: 1
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
      - {account: prod, copy: true}
"#;

fn scope() -> Scope {
    Scope::new(FACTORY, REGION)
}

fn world() -> MemoryCloud {
    let cloud = MemoryCloud::new();
    let key = cloud.add_key(
        &scope(),
        KEY_ID,
        Some("alias/golden"),
        KeyManager::Customer,
        POLICY,
    );
    cloud.add_image(
        &scope(),
        IMAGE,
        &[Snapshot {
            id: SNAPSHOT.into(),
            encrypted: true,
            kms_key_id: Some(key),
        }],
    );
    cloud
}

fn sources() -> Vec<SpecSource> {
    vec![SpecSource {
        path: "specs/share.yaml".into(),
        text: SPEC.into(),
    }]
}

fn load() -> Spec {
    saved::load_sources(&sources()).expect("valid spec")
}

async fn saved_plan(cloud: &MemoryCloud) -> (SavedPlan, Spec) {
    let spec = load();
    let observed = observe(cloud, &spec).await.expect("observed");
    let planned = plan(&spec, &observed);
    (SavedPlan::new(sources(), &spec, &observed, planned), spec)
}

async fn stale(cloud: &MemoryCloud, saved: &SavedPlan, spec: &Spec) -> Vec<Resource> {
    saved.stale(spec, &observe(cloud, spec).await.expect("observed"))
}

fn resource(kind: ResourceKind, id: &str) -> Resource {
    Resource {
        kind,
        account: FACTORY.into(),
        region: REGION.into(),
        id: id.into(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

#[tokio::test]
async fn saved_plan_reads_back_unchanged() {
    let (saved, spec) = saved_plan(&world()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    saved.write(&path).unwrap();

    let read = SavedPlan::read(&path).unwrap().expect("a saved plan");
    assert_eq!(read.amishare_saved_plan, SAVED_PLAN_VERSION);
    assert_eq!(read.amishare_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(read.specs, sources());
    assert_eq!(read.fingerprints, saved.fingerprints);
    assert_eq!(
        render_json(&read.plan, &spec),
        render_json(&saved.plan, &spec)
    );
    assert_eq!(read.plan.changes.len(), 3, "{:#?}", read.plan);
}

#[tokio::test]
async fn fingerprints_cover_image_snapshot_and_key() {
    let (saved, _) = saved_plan(&world()).await;
    let resources: Vec<&Resource> = saved.fingerprints.iter().map(|f| &f.resource).collect();
    assert!(resources.contains(&&resource(ResourceKind::Image, IMAGE)));
    assert!(resources.contains(&&resource(ResourceKind::Snapshot, SNAPSHOT)));
    assert!(resources.contains(&&resource(ResourceKind::Key, "golden")));
    for fingerprint in &saved.fingerprints {
        assert_eq!(fingerprint.sha256.len(), 64, "{fingerprint:?}");
    }
}

#[tokio::test]
async fn unchanged_state_is_not_stale() {
    let cloud = world();
    let (saved, spec) = saved_plan(&cloud).await;
    assert_eq!(stale(&cloud, &saved, &spec).await, []);
}

#[tokio::test]
async fn new_launch_permission_makes_image_stale() {
    let cloud = world();
    let (saved, spec) = saved_plan(&cloud).await;
    cloud.set_launch_permissions(
        &scope(),
        IMAGE,
        &[LaunchEntry::Account("999999999999".into())],
    );
    assert_eq!(
        stale(&cloud, &saved, &spec).await,
        [resource(ResourceKind::Image, IMAGE)]
    );
}

#[tokio::test]
async fn new_volume_permission_makes_snapshot_stale() {
    let cloud = world();
    let (saved, spec) = saved_plan(&cloud).await;
    cloud.set_volume_permissions(&scope(), SNAPSHOT, &["999999999999"]);
    assert_eq!(
        stale(&cloud, &saved, &spec).await,
        [resource(ResourceKind::Snapshot, SNAPSHOT)]
    );
}

#[tokio::test]
async fn policy_edit_makes_key_stale() {
    let cloud = world();
    let (saved, spec) = saved_plan(&cloud).await;
    cloud.set_policy(&scope(), KEY_ID, &POLICY.replace("kms:*", "kms:Describe*"));
    assert_eq!(
        stale(&cloud, &saved, &spec).await,
        [resource(ResourceKind::Key, "golden")]
    );
}

#[tokio::test]
async fn key_state_change_makes_key_stale() {
    let cloud = world();
    let (saved, spec) = saved_plan(&cloud).await;
    cloud.set_key_state(&scope(), KEY_ID, "Disabled");
    assert_eq!(
        stale(&cloud, &saved, &spec).await,
        [resource(ResourceKind::Key, "golden")]
    );
}

#[tokio::test]
async fn edited_changes_do_not_follow_from_the_specs() {
    let cloud = world();
    let (saved, spec) = saved_plan(&cloud).await;
    let observed = observe(&cloud, &spec).await.expect("observed");
    let fresh = plan(&spec, &observed);
    assert!(saved.follows_from(&fresh));

    // Someone makes the image public in the file, which the spec does not allow.
    let mut edited = saved.clone();
    for change in &mut edited.plan.changes {
        if let Change::LaunchPermissions(launch) = change {
            launch.add.push(LaunchEntry::Public);
        }
    }
    assert!(edited.stale(&spec, &observed).is_empty());
    assert!(!edited.follows_from(&fresh));

    // Dropping a change is an edit too.
    let mut fewer = saved.clone();
    fewer.plan.changes.pop();
    assert!(!fewer.follows_from(&fresh));
}

#[tokio::test]
async fn stale_resources_are_named_in_messages() {
    let text = resource(ResourceKind::Snapshot, SNAPSHOT).to_string();
    assert_eq!(
        text,
        "snapshot `snap-0123456789abcdef0` in account 111111111111 in us-east-1"
    );
}

fn unreadable(message: &str, request_id: &str) -> Observed {
    let mut observed = Observed::default();
    let err = AwsError {
        operation: "DescribeKey",
        scope: scope(),
        code: Some("AccessDeniedException".into()),
        message: message.into(),
        request_id: Some(request_id.into()),
    };
    observed
        .keys
        .insert("golden".into(), ObservedKey::Unreadable(err));
    observed
}

#[test]
fn unreadable_key_fingerprint_ignores_request_id() {
    let spec = load();
    let first = saved::fingerprints(&spec, &unreadable("denied", "req-1"));
    let second = saved::fingerprints(&spec, &unreadable("denied for user x", "req-2"));
    assert_eq!(first, second);
}

#[test]
fn spec_file_is_not_a_saved_plan() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = write(dir.path(), "share.yaml", SPEC);
    let json = write(dir.path(), "other.json", r#"{"version": 1}"#);
    for path in [yaml.as_path(), json.as_path(), dir.path()] {
        assert!(
            SavedPlan::read(path).unwrap().is_none(),
            "{}",
            path.display()
        );
        assert!(!saved::is_saved_plan(path), "{}", path.display());
    }
    assert!(
        SavedPlan::read(&dir.path().join("missing.json"))
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn other_format_version_is_rejected() {
    let (saved, _) = saved_plan(&world()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = saved.to_json().replace(
        &format!("\"amishare_saved_plan\": {SAVED_PLAN_VERSION}"),
        "\"amishare_saved_plan\": 99",
    );
    let path = write(dir.path(), "plan.json", &text);
    assert!(saved::is_saved_plan(&path));
    let err = SavedPlan::read(&path).unwrap_err();
    assert!(matches!(err, SavedPlanError::Format { .. }), "{err:?}");
    assert!(err.to_string().contains("`99`"), "{err}");
}

#[tokio::test]
async fn other_amishare_version_is_rejected() {
    let (saved, _) = saved_plan(&world()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = saved.to_json().replace(
        &format!("\"amishare_version\": \"{}\"", env!("CARGO_PKG_VERSION")),
        "\"amishare_version\": \"0.0.1\"",
    );
    let path = write(dir.path(), "plan.json", &text);
    let err = SavedPlan::read(&path).unwrap_err();
    assert!(matches!(err, SavedPlanError::Version { .. }), "{err:?}");
    assert!(err.to_string().contains("`0.0.1`"), "{err}");
}

#[tokio::test]
async fn damaged_saved_plan_names_the_field() {
    let (saved, _) = saved_plan(&world()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = saved
        .to_json()
        .replace("\"kind\": \"key_policy\"", "\"kind\": \"rename_key\"");
    let path = write(dir.path(), "plan.json", &text);
    let err = SavedPlan::read(&path).unwrap_err();
    assert!(matches!(err, SavedPlanError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("plan.changes[0]"), "{err}");
}

#[tokio::test]
async fn directory_sources_match_spec_load() {
    let dir = tempfile::tempdir().unwrap();
    let (accounts, images) = SPEC.split_once("images:").unwrap();
    write(dir.path(), "a-accounts.yml", accounts);
    write(
        dir.path(),
        "b-images.yaml",
        &format!("version: 1\nimages:{images}"),
    );
    write(dir.path(), "notes.txt", "not a spec");
    std::fs::create_dir(dir.path().join("nested.yaml")).unwrap();

    let sources = saved::read_sources(&[dir.path().to_path_buf()]).unwrap();
    let names: Vec<String> = sources
        .iter()
        .map(|s| {
            Path::new(&s.path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, ["a-accounts.yml", "b-images.yaml"]);

    let from_sources = saved::load_sources(&sources).expect("valid spec");
    let from_files = spec::load(&[dir.path().to_path_buf()]).expect("valid spec");
    let cloud = world();
    let observed = observe(&cloud, &from_files).await.unwrap();
    assert_eq!(
        render_json(&plan(&from_sources, &observed), &from_sources),
        render_json(&plan(&from_files, &observed), &from_files)
    );
}

#[test]
fn invalid_saved_spec_is_reported() {
    let sources = [SpecSource {
        path: "broken.yaml".into(),
        text: "version: 1\naccounts: 3\n".into(),
    }];
    let err = saved::load_sources(&sources).unwrap_err();
    assert!(err.to_string().contains("broken.yaml"), "{err}");
}

fn amishare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_amishare"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
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

#[test]
fn apply_without_terminal_needs_auto_approve() {
    let output = amishare(&["apply", "specs/example.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("stdin is not a terminal"), "{stderr}");
    assert!(stderr.contains("--auto-approve"), "{stderr}");
    assert!(
        !stderr.contains("127.0.0.1:9"),
        "apply reached for AWS: {stderr}"
    );
}

#[tokio::test]
async fn plan_rejects_a_saved_plan_as_spec() {
    let (saved, _) = saved_plan(&world()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    saved.write(&path).unwrap();
    let output = amishare(&["plan", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is a saved plan, not a spec"), "{stderr}");
    assert!(stderr.contains("amishare apply"), "{stderr}");
}

#[tokio::test]
async fn apply_takes_a_saved_plan_alone() {
    let (saved, _) = saved_plan(&world()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    saved.write(&path).unwrap();
    let output = amishare(&["apply", path.to_str().unwrap(), "specs/example.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must be the only argument"), "{stderr}");
}

#[tokio::test]
async fn new_copy_makes_saved_plan_stale() {
    let cloud = MemoryCloud::new();
    cloud.add_key(
        &scope(),
        KEY_ID,
        Some("alias/golden"),
        KeyManager::Customer,
        POLICY,
    );
    let managed = cloud.add_key(
        &scope(),
        "aaaaaaaa-12ab-34cd-56ef-1234567890ab",
        Some("alias/aws/ebs"),
        KeyManager::Aws,
        "{}",
    );
    cloud.add_image(
        &scope(),
        IMAGE,
        &[Snapshot {
            id: SNAPSHOT.into(),
            encrypted: true,
            kms_key_id: Some(managed),
        }],
    );
    let text = SPEC.replace(
        "    key: golden\n",
        "    key: golden\n    reencrypt: true\n",
    );
    let sources = [SpecSource {
        path: "copies.yaml".into(),
        text,
    }];
    let spec = saved::load_sources(&sources).expect("valid spec");
    let observed = observe(&cloud, &spec).await.expect("observed");
    let planned = plan(&spec, &observed);
    let Some(Change::Copy(copy)) = planned
        .changes
        .iter()
        .find(|c| matches!(c, Change::Copy(_)))
    else {
        panic!("no copy in {planned:#?}");
    };
    let request = copy.request.clone();
    let copy_scope = copy.scope.clone();
    let saved = SavedPlan::new(sources.to_vec(), &spec, &observed, planned);

    // Someone else started the same copy since the plan was saved.
    let copy_id = cloud
        .copy_image(&copy_scope, &request)
        .await
        .expect("CopyImage");
    let stale = stale(&cloud, &saved, &spec).await;
    assert!(
        stale.contains(&resource(ResourceKind::Image, &copy_id)),
        "{stale:?}"
    );
}

#[tokio::test]
async fn newly_selected_image_makes_saved_plan_stale() {
    let cloud = world();
    cloud.describe_image(
        &scope(),
        IMAGE,
        "golden-1",
        &[("team", "platform")],
        "2026-01-01T00:00:00.000Z",
    );
    let text = SPEC.replace(
        "ids: [ami-0123456789abcdef0]",
        "select: {name: \"golden-*\"}",
    );
    let sources = [SpecSource {
        path: "selection.yaml".into(),
        text,
    }];
    let spec = saved::load_sources(&sources).expect("valid spec");
    let observed = observe(&cloud, &spec).await.expect("observed");
    let planned = plan(&spec, &observed);
    let saved = SavedPlan::new(sources.to_vec(), &spec, &observed, planned);
    assert_eq!(stale(&cloud, &saved, &spec).await, []);

    let second = "ami-0123456789abcdef9";
    let key_arn = format!("arn:aws:kms:{REGION}:{FACTORY}:key/{KEY_ID}");
    cloud.add_image(
        &scope(),
        second,
        &[Snapshot {
            id: "snap-0123456789abcdef9".into(),
            encrypted: true,
            kms_key_id: Some(key_arn),
        }],
    );
    cloud.describe_image(
        &scope(),
        second,
        "golden-2",
        &[("team", "platform")],
        "2026-02-01T00:00:00.000Z",
    );
    let stale = stale(&cloud, &saved, &spec).await;
    assert!(
        stale.contains(&resource(ResourceKind::Image, second)),
        "{stale:?}"
    );
    let selection = stale
        .iter()
        .find(|r| r.kind == ResourceKind::Selection)
        .unwrap_or_else(|| panic!("no selection in {stale:?}"));
    assert!(selection.id.contains("images[0]"), "{selection:?}");
    assert!(
        selection.to_string().starts_with("image selection `"),
        "{selection}"
    );
}

#[test]
fn unreachable_endpoint_gets_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(
        dir.path(),
        "spec.yaml",
        "version: 1\naccounts:\n  - {name: src, id: \"111111111111\", role_arn: \"arn:aws:iam::111111111111:role/amishare\"}\nimages:\n  - account: src\n    region: us-east-1\n    ids: [ami-0123456789abcdef0]\n    share_with:\n      - {account: \"222222222222\"}\n",
    );
    let output = amishare(&["plan", spec.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read the live state"), "{stderr}");
    assert!(stderr.contains("no response came from AWS"), "{stderr}");
    assert!(stderr.contains("role_arn"), "{stderr}");
}
