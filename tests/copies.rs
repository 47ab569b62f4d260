//! Copies against the in-memory AWS: re-encrypted copies, replicas, copies under a
//! target's key, copies a target keeps, and waiting, failure and idempotence.

use std::path::Path;
use std::time::Duration;

use amishare::apply::{CopyOptions, NoProgress, apply_all};
use amishare::aws::memory::{CopyEnding, MemoryCloud};
use amishare::copies::CopyPurpose;
use amishare::model::{KeyManager, LaunchEntry, Scope, Snapshot, TAG_COPY_OF, copy_of};
use amishare::observe::observe;
use amishare::plan::{Change, Plan, plan};
use amishare::spec::{self, Spec};

const SOURCE: &str = "111111111111";
const PROD: &str = "222222222222";
const REGION: &str = "us-east-1";
const OTHER_REGION: &str = "eu-west-1";
const IMAGE: &str = "ami-0123456789abcdef0";
const GOLDEN: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const GOLDEN_EU: &str = "5678abcd-12ab-34cd-56ef-1234567890ab";
const PROD_KEY: &str = "9999abcd-12ab-34cd-56ef-1234567890ab";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"}]}"#;

fn source() -> Scope {
    Scope::new(SOURCE, REGION)
}

fn prod_key_arn() -> String {
    format!("arn:aws:kms:{REGION}:{PROD}:key/{PROD_KEY}")
}

/// A source image under the account's AWS managed key, a customer managed key in each of
/// two regions, and a key of the target account.
fn world() -> MemoryCloud {
    let cloud = MemoryCloud::new();
    cloud.add_key(
        &source(),
        GOLDEN,
        Some("alias/golden"),
        KeyManager::Customer,
        POLICY,
    );
    cloud.add_key(
        &Scope::new(SOURCE, OTHER_REGION),
        GOLDEN_EU,
        Some("alias/golden"),
        KeyManager::Customer,
        POLICY,
    );
    cloud.add_key(
        &Scope::new(PROD, REGION),
        PROD_KEY,
        Some("alias/prod"),
        KeyManager::Customer,
        POLICY,
    );
    let managed = cloud.add_key(
        &source(),
        "aaaaaaaa-12ab-34cd-56ef-1234567890ab",
        Some("alias/aws/ebs"),
        KeyManager::Aws,
        "{}",
    );
    let snapshot = Snapshot {
        id: "snap-0123456789abcdef0".into(),
        encrypted: true,
        kms_key_id: Some(managed),
    };
    cloud.add_image(&source(), IMAGE, &[snapshot]);
    cloud.set_copy_behaviour(2, CopyEnding::Available);
    cloud
}

fn spec(image_extra: &str, shares: &str) -> Spec {
    let text = format!(
        r#"
version: 1
accounts:
  - {{name: factory, id: "{SOURCE}"}}
  - {{name: prod, id: "{PROD}", role_arn: "arn:aws:iam::{PROD}:role/amishare"}}
keys:
  - {{name: golden, account: factory, region: {REGION}, key: alias/golden}}
  - {{name: golden-eu, account: factory, region: {OTHER_REGION}, key: alias/golden}}
images:
  - account: factory
    region: {REGION}
    ids: [{IMAGE}]
    key: golden
{image_extra}
    share_with:
{shares}
"#
    );
    spec::load_str(Path::new("copies.yaml"), &text).expect("test spec is valid")
}

fn options() -> CopyOptions {
    CopyOptions {
        timeout: Duration::from_secs(5),
        max_in_flight_per_region: 2,
        first_poll: Duration::from_millis(1),
        max_poll: Duration::from_millis(5),
    }
}

async fn plan_for(cloud: &MemoryCloud, spec: &Spec) -> Plan {
    plan(spec, &observe(cloud, spec).await.expect("observe succeeds"))
}

fn copies(plan: &Plan) -> Vec<&amishare::plan::CopyChange> {
    plan.changes
        .iter()
        .filter_map(|c| match c {
            Change::Copy(copy) => Some(copy),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn reencrypted_copy_is_made_and_shared() {
    let cloud = world();
    let spec = spec("    reencrypt: true", "      - {account: prod}");
    let first = plan_for(&cloud, &spec).await;
    assert_eq!(first.blocked().count(), 0, "{first:#?}");
    let planned = copies(&first);
    assert_eq!(planned.len(), 1, "{first:#?}");
    assert_eq!(planned[0].purpose, CopyPurpose::Reencrypt);
    assert!(planned[0].request.key_arn.ends_with(GOLDEN));
    assert_eq!(planned[0].shares, [LaunchEntry::Account(PROD.into())]);

    let (report, _) = apply_all(&cloud, &spec, &first, &options(), &NoProgress)
        .await
        .unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let made = cloud.copies_of(&source(), &copy_of(&source(), IMAGE));
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].state, "available");
    assert_eq!(
        cloud.launch_set(&source(), &made[0].id),
        [LaunchEntry::Account(PROD.into())].into()
    );
    let snapshot = cloud.snapshot(&made[0].snapshot_ids[0]).unwrap();
    assert!(snapshot.kms_key_id.unwrap().ends_with(GOLDEN));
    assert!(
        cloud.launch_set(&source(), IMAGE).is_empty(),
        "the original is not shared"
    );

    let again = plan_for(&cloud, &spec).await;
    assert!(again.is_empty(), "{again:#?}");
}

#[tokio::test]
async fn without_reencrypt_image_stays_blocked() {
    let cloud = world();
    let planned = plan_for(&cloud, &spec("", "      - {account: prod}")).await;
    assert!(copies(&planned).is_empty());
    assert!(planned.blocked().any(|f| f.code == "aws-managed-key"));
}

#[tokio::test]
async fn replica_is_made_once_and_shared() {
    let cloud = world();
    let spec = spec(
        &format!("    reencrypt: true\n    replicas: [{{region: {OTHER_REGION}, key: golden-eu}}]"),
        "      - {account: prod, copy: true}",
    );
    let (report, _) = apply_all(
        &cloud,
        &spec,
        &plan_for(&cloud, &spec).await,
        &options(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let eu = Scope::new(SOURCE, OTHER_REGION);
    let replicas = cloud.copies_of(&eu, &copy_of(&source(), IMAGE));
    assert_eq!(replicas.len(), 1);
    assert_eq!(
        cloud.launch_set(&eu, &replicas[0].id),
        [LaunchEntry::Account(PROD.into())].into()
    );
    assert_eq!(
        cloud.volume_set(&eu, &replicas[0].snapshot_ids[0]),
        [PROD.to_owned()].into()
    );
    let snapshot = cloud.snapshot(&replicas[0].snapshot_ids[0]).unwrap();
    assert!(snapshot.kms_key_id.unwrap().ends_with(GOLDEN_EU));

    let again = plan_for(&cloud, &spec).await;
    assert!(again.is_empty(), "{again:#?}");
    let (report, _) = apply_all(&cloud, &spec, &again, &options(), &NoProgress)
        .await
        .unwrap();
    assert!(report.done.is_empty());
    assert_eq!(
        cloud.copies_of(&eu, &copy_of(&source(), IMAGE)).len(),
        1,
        "copied twice"
    );
}

#[tokio::test]
async fn copy_under_target_key_is_shared_with_target_only() {
    let cloud = world();
    let shares = format!(
        "      - {{account: prod, copy_under: \"{}\"}}\n      - {{account: \"333333333333\"}}",
        prod_key_arn()
    );
    let spec = spec("    reencrypt: true", &shares);
    let first = plan_for(&cloud, &spec).await;
    assert!(
        first.findings.iter().any(|f| f.code == "target-key-policy"),
        "{first:#?}"
    );
    let (report, _) = apply_all(&cloud, &spec, &first, &options(), &NoProgress)
        .await
        .unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let made = cloud.copies_of(&source(), &copy_of(&source(), IMAGE));
    assert_eq!(
        made.len(),
        2,
        "a re-encrypted copy and one under the target's key"
    );
    let under_target: Vec<_> = made
        .iter()
        .filter(|c| cloud.snapshot(&c.snapshot_ids[0]).unwrap().kms_key_id == Some(prod_key_arn()))
        .collect();
    assert_eq!(under_target.len(), 1);
    assert_eq!(
        cloud.launch_set(&source(), &under_target[0].id),
        [LaunchEntry::Account(PROD.into())].into()
    );
    assert!(plan_for(&cloud, &spec).await.is_empty());
}

#[tokio::test]
async fn target_keeps_its_own_copy() {
    let cloud = world();
    let shares = format!(
        "      - {{account: prod, keep_copy_under: \"{}\"}}",
        prod_key_arn()
    );
    let spec = spec("    reencrypt: true", &shares);
    let (report, _) = apply_all(
        &cloud,
        &spec,
        &plan_for(&cloud, &spec).await,
        &options(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let shared = cloud.copies_of(&source(), &copy_of(&source(), IMAGE));
    assert_eq!(shared.len(), 1);
    // The target copies the shared copy, so it needs launch and copy rights on it.
    assert_eq!(
        cloud.volume_set(&source(), &shared[0].snapshot_ids[0]),
        [PROD.to_owned()].into()
    );
    let prod = Scope::new(PROD, REGION);
    let kept = cloud.copies_of(&prod, &copy_of(&source(), IMAGE));
    assert_eq!(kept.len(), 1, "the target's copy");
    assert_eq!(
        cloud.snapshot(&kept[0].snapshot_ids[0]).unwrap().kms_key_id,
        Some(prod_key_arn())
    );
    assert!(plan_for(&cloud, &spec).await.is_empty());
}

#[tokio::test]
async fn pending_copy_is_awaited_not_duplicated() {
    let cloud = world();
    cloud.set_copy_behaviour(1_000, CopyEnding::Available);
    let spec = spec("    reencrypt: true", "      - {account: prod}");
    let short = CopyOptions {
        timeout: Duration::from_millis(20),
        ..options()
    };
    let (report, _) = apply_all(
        &cloud,
        &spec,
        &plan_for(&cloud, &spec).await,
        &short,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(report.failed.len(), 1, "{report:#?}");
    assert!(report.failed[0].1.to_string().contains("still pending"));

    // Interrupted while pending: the next plan waits for that copy.
    let next = plan_for(&cloud, &spec).await;
    let planned = copies(&next);
    assert_eq!(planned.len(), 1);
    assert!(planned[0].pending_image.is_some(), "{next:#?}");
    cloud.set_copy_behaviour(1, CopyEnding::Available);
    let (report, _) = apply_all(&cloud, &spec, &next, &options(), &NoProgress)
        .await
        .unwrap();
    assert!(
        report.succeeded() || report.failed.is_empty(),
        "{report:#?}"
    );
    assert_eq!(
        cloud.copies_of(&source(), &copy_of(&source(), IMAGE)).len(),
        1
    );
}

#[tokio::test]
async fn copy_under_wrong_key_is_an_error() {
    let cloud = world();
    let wrong = format!("arn:aws:kms:{REGION}:{SOURCE}:key/bbbbbbbb-12ab-34cd-56ef-1234567890ab");
    cloud.set_copy_behaviour(1, CopyEnding::WrongKey(wrong.clone()));
    let spec = spec("    reencrypt: true", "      - {account: prod}");
    let (report, _) = apply_all(
        &cloud,
        &spec,
        &plan_for(&cloud, &spec).await,
        &options(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(report.failed.len(), 1, "{report:#?}");
    let message = report.failed[0].1.to_string();
    assert!(message.contains(&wrong), "{message}");
    assert!(message.contains("snap-"), "{message}");
    let after = plan_for(&cloud, &spec).await;
    let finding = after
        .blocked()
        .find(|f| f.code == "copy-wrong-key")
        .expect("plan reports the copy");
    assert!(finding.message.contains(&wrong));
}

#[tokio::test]
async fn failed_copy_does_not_stop_other_changes() {
    let cloud = world();
    let arn = format!("arn:aws:kms:{REGION}:{SOURCE}:key/{GOLDEN}");
    cloud.add_image(
        &source(),
        "ami-0123456789abcdef1",
        &[Snapshot {
            id: "snap-0123456789abcdef1".into(),
            encrypted: true,
            kms_key_id: Some(arn),
        }],
    );
    cloud.set_copy_behaviour(1, CopyEnding::Failed("Client.InternalError".into()));
    let text_spec = spec("    reencrypt: true", "      - {account: prod}");
    let mut spec = text_spec.clone();
    spec.images[0]
        .image_ids
        .push("ami-0123456789abcdef1".into());
    let (report, _) = apply_all(
        &cloud,
        &spec,
        &plan_for(&cloud, &spec).await,
        &options(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(report.failed.len(), 1, "{report:#?}");
    assert!(
        report.failed[0]
            .1
            .to_string()
            .contains("Client.InternalError")
    );
    assert_eq!(
        cloud.launch_set(&source(), "ami-0123456789abcdef1"),
        [LaunchEntry::Account(PROD.into())].into()
    );
}

#[tokio::test]
async fn copy_limit_exceeded_is_retried() {
    let cloud = world();
    cloud.fail_next("CopyImage", "ResourceLimitExceeded");
    let spec = spec("    reencrypt: true", "      - {account: prod}");
    let (report, _) = apply_all(
        &cloud,
        &spec,
        &plan_for(&cloud, &spec).await,
        &options(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(
        cloud.calls().iter().filter(|c| **c == "CopyImage").count(),
        2
    );
    assert_eq!(
        cloud.copies_of(&source(), &copy_of(&source(), IMAGE)).len(),
        1
    );
}

#[tokio::test]
async fn copies_carry_their_source_tags() {
    let cloud = world();
    let spec = spec("    reencrypt: true", "      - {account: prod}");
    apply_all(
        &cloud,
        &spec,
        &plan_for(&cloud, &spec).await,
        &options(),
        &NoProgress,
    )
    .await
    .unwrap();
    let made = &cloud.copies_of(&source(), &copy_of(&source(), IMAGE))[0];
    assert_eq!(
        made.tag(TAG_COPY_OF),
        Some(format!("{SOURCE}/{REGION}/{IMAGE}").as_str())
    );
    assert_eq!(made.tag("amishare:source-image"), Some(IMAGE));
    assert_eq!(made.tag("amishare:source-account"), Some(SOURCE));
    assert_eq!(made.tag("amishare:source-region"), Some(REGION));
    assert_eq!(made.tag("amishare:entry"), Some("copies.yaml: images[0]"));
}

#[tokio::test]
async fn selector_does_not_select_its_own_copies() {
    let cloud = world();
    cloud.describe_image(
        &source(),
        IMAGE,
        "golden-base",
        &[],
        "2026-01-01T00:00:00.000Z",
    );
    let text_spec = spec("    reencrypt: true", "      - {account: prod}");
    let mut spec = text_spec.clone();
    spec.images[0].image_ids.clear();
    spec.images[0].selector = Some(amishare::spec::Selector {
        name: Some("golden-*".into()),
        tags: vec![],
        newest: None,
        must_match: true,
    });
    for _ in 0..2 {
        let (report, _) = apply_all(
            &cloud,
            &spec,
            &plan_for(&cloud, &spec).await,
            &options(),
            &NoProgress,
        )
        .await
        .unwrap();
        assert!(report.succeeded(), "{report:#?}");
    }
    let made = cloud.copies_of(&source(), &copy_of(&source(), IMAGE));
    assert_eq!(made.len(), 1, "{made:#?}");
    assert!(
        made[0]
            .name
            .as_deref()
            .unwrap_or_default()
            .starts_with("golden-"),
        "the copy matches the selector's pattern"
    );
    let again = plan_for(&cloud, &spec).await;
    assert!(again.is_empty(), "{again:#?}");
}

#[tokio::test]
async fn copies_with_one_name_are_blocked() {
    let cloud = world();
    let eu = Scope::new(SOURCE, OTHER_REGION);
    let second = "ami-0123456789abcdef1";
    let managed = cloud
        .snapshot("snap-0123456789abcdef0")
        .and_then(|s| s.kms_key_id)
        .expect("the first image's snapshot");
    cloud.add_image(
        &eu,
        second,
        &[Snapshot {
            id: "snap-0123456789abcdef1".into(),
            encrypted: true,
            kms_key_id: Some(managed),
        }],
    );
    // EC2 names are unique per region only, so two regions may each have a `base`.
    for (scope, id) in [(source(), IMAGE), (eu.clone(), second)] {
        cloud.describe_image(&scope, id, "base", &[], "2026-01-01T00:00:00.000Z");
    }
    // The first image's replica and the second image's re-encrypted copy both land in
    // eu-west-1 as `base-golden-eu`.
    let text = |name: &str| {
        format!(
            "version: 1\naccounts:\n  - {{name: factory, id: \"{SOURCE}\"}}\n  - {{name: prod, id: \"{PROD}\"}}\nkeys:\n  - {{name: golden, account: factory, region: {REGION}, key: alias/golden}}\n  - {{name: golden-eu, account: factory, region: {OTHER_REGION}, key: alias/golden}}\nimages:\n  - account: factory\n    region: {REGION}\n    ids: [{IMAGE}]\n    key: golden\n    reencrypt: true\n    copy_name: \"{name}\"\n    replicas: [{{region: {OTHER_REGION}, key: golden-eu}}]\n    share_with:\n      - {{account: prod}}\n  - account: factory\n    region: {OTHER_REGION}\n    ids: [{second}]\n    key: golden-eu\n    reencrypt: true\n    copy_name: \"{name}\"\n    share_with:\n      - {{account: prod}}\n"
        )
    };
    let clashing = spec::load_str(Path::new("names.yaml"), &text("{name}-{key}")).expect("valid");
    let planned = plan_for(&cloud, &clashing).await;
    let clashes: Vec<_> = planned
        .blocked()
        .filter(|f| f.code == "copy-name-conflict")
        .collect();
    assert_eq!(clashes.len(), 1, "{planned:#?}");
    assert_eq!(clashes[0].scope, eu);
    assert_eq!(clashes[0].resource, "base-golden-eu");
    assert!(clashes[0].message.contains(IMAGE), "{}", clashes[0].message);
    assert!(
        clashes[0].message.contains(second),
        "{}",
        clashes[0].message
    );
    let copies_in_eu = planned
        .changes
        .iter()
        .filter(|c| matches!(c, Change::Copy(copy) if copy.scope == eu))
        .count();
    assert_eq!(copies_in_eu, 0, "{planned:#?}");

    // With the image id in the name, each copy has its own.
    let distinct =
        spec::load_str(Path::new("names.yaml"), &text("{name}-{id}-{key}")).expect("valid");
    let planned = plan_for(&cloud, &distinct).await;
    assert!(
        planned.blocked().all(|f| f.code != "copy-name-conflict"),
        "{planned:#?}"
    );
}
