//! The reconcile loop (observe, plan, apply) against the in-memory AWS.

use std::collections::BTreeSet;
use std::path::Path;

use amishare::apply::apply;
use amishare::aws::memory::MemoryCloud;
use amishare::model::{KeyManager, LaunchEntry, Scope, Snapshot};
use amishare::observe::observe;
use amishare::plan::{Change, Plan, Severity, plan};
use amishare::policy::{Policy, SID_ACCOUNTS, SID_ORGANIZATIONS, SID_OUS};
use amishare::spec::{self, Spec};

const SOURCE: &str = "111111111111";
const PROD: &str = "222222222222";
const STAGING: &str = "333333333333";
const REGION: &str = "us-east-1";
const IMAGE: &str = "ami-0123456789abcdef0";
const SNAPSHOT: &str = "snap-0123456789abcdef0";
const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const ORG: &str = "arn:aws:organizations::111111111111:organization/o-abcde12345";
const OU: &str = "arn:aws:organizations::111111111111:ou/o-abcde12345/ou-ab12-abcdefgh";

const ROOT_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Id": "key-default-1",
  "Statement": [
    {
      "Sid": "Enable IAM User Permissions",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
      "Action": "kms:*",
      "Resource": "*"
    },
    {
      "Sid": "Foreign deny",
      "Effect": "Deny",
      "NotPrincipal": {"AWS": ["arn:aws:iam::111111111111:role/admin", "111111111111"]},
      "Action": "kms:ScheduleKeyDeletion",
      "Resource": "*",
      "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}
    }
  ]
}"#;

fn scope() -> Scope {
    Scope::new(SOURCE, REGION)
}

fn spec_text(prune: bool, shares: &str) -> String {
    format!(
        r#"
version: 1
settings: {{prune: {prune}}}
accounts:
  - {{name: factory, id: "{SOURCE}"}}
  - {{name: prod, id: "{PROD}"}}
keys:
  - {{name: golden, account: factory, region: {REGION}, key: alias/golden}}
images:
  - account: factory
    region: {REGION}
    ids: [{IMAGE}]
    key: golden
    share_with:
{shares}
"#
    )
}

const DEFAULT_SHARES: &str = "
      - {account: prod, copy: true}
      - {organization: \"arn:aws:organizations::111111111111:organization/o-abcde12345\"}
      - {ou: \"arn:aws:organizations::111111111111:ou/o-abcde12345/ou-ab12-abcdefgh\"}";

fn load(text: &str) -> Spec {
    spec::load_str(Path::new("test.yaml"), text).expect("test spec is valid")
}

/// A source account holding one image with one snapshot under a customer managed key.
fn world() -> (MemoryCloud, String) {
    let cloud = MemoryCloud::new();
    let arn = cloud.add_key(
        &scope(),
        KEY_ID,
        Some("alias/golden"),
        KeyManager::Customer,
        ROOT_POLICY,
    );
    let snapshot = Snapshot {
        id: SNAPSHOT.into(),
        encrypted: true,
        kms_key_id: Some(arn.clone()),
    };
    cloud.add_image(&scope(), IMAGE, &[snapshot]);
    (cloud, arn)
}

async fn plan_for(cloud: &MemoryCloud, spec: &Spec) -> Plan {
    let observed = observe(cloud, spec).await.expect("observe succeeds");
    plan(spec, &observed)
}

fn policy_now(cloud: &MemoryCloud) -> Policy {
    Policy::parse(&cloud.policy(&scope(), KEY_ID).expect("key exists")).expect("policy parses")
}

#[tokio::test]
async fn apply_reaches_declared_state() {
    let (cloud, _) = world();
    let spec = load(&spec_text(false, DEFAULT_SHARES));
    let first = plan_for(&cloud, &spec).await;
    assert_eq!(first.changes.len(), 3, "{first:#?}");
    assert!(first.findings.is_empty(), "{:#?}", first.findings);

    let report = apply(&cloud, &first).await;
    assert!(report.succeeded(), "{report:#?}");

    let launch = cloud.launch_set(&scope(), IMAGE);
    let expected: BTreeSet<LaunchEntry> = [
        LaunchEntry::Account(PROD.into()),
        LaunchEntry::Organization(ORG.into()),
        LaunchEntry::OrganizationalUnit(OU.into()),
    ]
    .into();
    assert_eq!(launch, expected);
    assert_eq!(
        cloud.volume_set(&scope(), SNAPSHOT),
        BTreeSet::from([PROD.to_owned()])
    );

    let policy = policy_now(&cloud);
    let members = policy.managed_members("aws");
    assert_eq!(
        members[SID_ACCOUNTS],
        BTreeSet::from([format!("arn:aws:iam::{PROD}:root")])
    );
    assert_eq!(
        members[SID_ORGANIZATIONS],
        BTreeSet::from(["o-abcde12345".to_owned()])
    );
    assert_eq!(
        members[SID_OUS],
        BTreeSet::from(["o-abcde12345/*/ou-ab12-abcdefgh/*".to_owned()])
    );
    let original = Policy::parse(ROOT_POLICY).unwrap();
    for statement in original.statements() {
        assert!(
            policy.statements().contains(statement),
            "foreign statement lost: {statement}"
        );
    }
}

#[tokio::test]
async fn second_apply_makes_no_mutating_call() {
    let (cloud, _) = world();
    let spec = load(&spec_text(false, DEFAULT_SHARES));
    let report = apply(&cloud, &plan_for(&cloud, &spec).await).await;
    assert!(report.succeeded());
    assert!(cloud.mutating_calls() > 0);

    cloud.clear_calls();
    let second = plan_for(&cloud, &spec).await;
    assert!(second.is_empty(), "{second:#?}");
    let report = apply(&cloud, &second).await;
    assert!(report.done.is_empty());
    assert_eq!(cloud.mutating_calls(), 0, "{:?}", cloud.calls());
}

#[tokio::test]
async fn observe_calls_scale_with_images_not_targets() {
    let (cloud, _) = world();
    let many: String = (0..40)
        .map(|i| format!("\n      - {{account: \"{:012}\"}}", 500_000_000_000u64 + i))
        .collect();
    let spec = load(&spec_text(false, &many));
    plan_for(&cloud, &spec).await;
    let calls = cloud.calls();
    let count = |op: &str| calls.iter().filter(|c| **c == op).count();
    assert_eq!(count("DescribeImages"), 1);
    assert_eq!(count("DescribeSnapshots"), 1);
    assert_eq!(count("DescribeImageAttribute"), 1);
    assert_eq!(
        count("DescribeSnapshotAttribute"),
        0,
        "no copy targets, no pruning"
    );
    assert_eq!(count("DescribeKey"), 1);
    assert_eq!(count("GetKeyPolicy"), 1);
}

#[tokio::test]
async fn one_modify_call_per_image_and_snapshot() {
    let (cloud, _) = world();
    let many: String = (0..40)
        .map(|i| {
            format!(
                "\n      - {{account: \"{:012}\", copy: true}}",
                500_000_000_000u64 + i
            )
        })
        .collect();
    let spec = load(&spec_text(false, &many));
    let report = apply(&cloud, &plan_for(&cloud, &spec).await).await;
    assert!(report.succeeded());
    let calls = cloud.calls();
    let count = |op: &str| calls.iter().filter(|c| **c == op).count();
    assert_eq!(count("ModifyImageAttribute"), 1);
    assert_eq!(count("ModifySnapshotAttribute"), 1);
    assert_eq!(count("PutKeyPolicy"), 1);
    assert_eq!(cloud.launch_set(&scope(), IMAGE).len(), 40);
}

#[tokio::test]
async fn prune_removes_undeclared_account() {
    let (cloud, _) = world();
    cloud.set_launch_permissions(&scope(), IMAGE, &[LaunchEntry::Account(STAGING.into())]);
    let spec = load(&spec_text(true, "      - {account: prod}"));
    let report = apply(&cloud, &plan_for(&cloud, &spec).await).await;
    assert!(report.succeeded());
    assert_eq!(
        cloud.launch_set(&scope(), IMAGE),
        BTreeSet::from([LaunchEntry::Account(PROD.into())])
    );
}

#[tokio::test]
async fn without_prune_undeclared_account_is_reported_and_kept() {
    let (cloud, _) = world();
    cloud.set_launch_permissions(&scope(), IMAGE, &[LaunchEntry::Account(STAGING.into())]);
    let spec = load(&spec_text(false, "      - {account: prod}"));
    let planned = plan_for(&cloud, &spec).await;
    let warning = planned
        .findings
        .iter()
        .find(|f| f.code == "undeclared-launch-permission")
        .expect("reported");
    assert_eq!(warning.severity, Severity::Warning);
    assert!(warning.message.contains(STAGING));
    apply(&cloud, &planned).await;
    let launch = cloud.launch_set(&scope(), IMAGE);
    assert!(launch.contains(&LaunchEntry::Account(STAGING.into())));
    assert!(launch.contains(&LaunchEntry::Account(PROD.into())));
}

#[tokio::test]
async fn prune_removes_undeclared_volume_permission() {
    let (cloud, _) = world();
    cloud.set_volume_permissions(&scope(), SNAPSHOT, &[STAGING]);
    let spec = load(&spec_text(true, "      - {account: prod}"));
    apply(&cloud, &plan_for(&cloud, &spec).await).await;
    assert!(cloud.volume_set(&scope(), SNAPSHOT).is_empty());
}

#[tokio::test]
async fn reordered_policy_with_bare_ids_gives_empty_plan() {
    let (cloud, _) = world();
    let spec = load(&spec_text(
        false,
        "      - {account: prod}\n      - {account: \"333333333333\"}",
    ));
    apply(&cloud, &plan_for(&cloud, &spec).await).await;
    // What KMS might return: statements reordered, bare account ids, single strings.
    let returned = r#"{"Id":"key-default-1","Version":"2012-10-17","Statement":[
      {"Resource":"*","Action":["kms:ReEncrypt*","kms:GenerateDataKeyWithoutPlaintext","kms:DescribeKey","kms:Decrypt","kms:CreateGrant"],
       "Principal":{"AWS":["333333333333","222222222222"]},"Effect":"Allow","Sid":"amishare-accounts"},
      {"Sid":"Foreign deny","Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111111111111:root","arn:aws:iam::111111111111:role/admin"]},
       "Action":["kms:ScheduleKeyDeletion"],"Resource":["*"],"Condition":{"Bool":{"aws:MultiFactorAuthPresent":["false"]}}},
      {"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":["kms:*"],"Resource":"*"}
    ]}"#;
    cloud.set_policy(&scope(), KEY_ID, returned);
    let again = plan_for(&cloud, &spec).await;
    assert!(again.is_empty(), "{again:#?}");
}

#[tokio::test]
async fn orphaned_unique_id_is_repaired() {
    let (cloud, _) = world();
    let spec = load(&spec_text(false, "      - {account: prod}"));
    apply(&cloud, &plan_for(&cloud, &spec).await).await;
    let text = cloud.policy(&scope(), KEY_ID).unwrap().replace(
        &format!("arn:aws:iam::{PROD}:root"),
        "AROAEXAMPLEID12345678",
    );
    cloud.set_policy(&scope(), KEY_ID, &text);

    let repair = plan_for(&cloud, &spec).await;
    let Some(Change::KeyPolicy(change)) = repair.changes.first() else {
        panic!("no key change: {repair:#?}")
    };
    assert!(
        change
            .removed
            .contains(&(SID_ACCOUNTS.to_owned(), "AROAEXAMPLEID12345678".to_owned()))
    );
    assert!(
        repair
            .findings
            .iter()
            .any(|f| f.code == "orphaned-principal")
    );
    apply(&cloud, &repair).await;
    let members = policy_now(&cloud).managed_members("aws");
    assert_eq!(
        members[SID_ACCOUNTS],
        BTreeSet::from([format!("arn:aws:iam::{PROD}:root")])
    );
    assert!(plan_for(&cloud, &spec).await.is_empty());
}

#[tokio::test]
async fn statement_added_after_plan_is_kept() {
    let (cloud, _) = world();
    let spec = load(&spec_text(false, "      - {account: prod}"));
    let planned = plan_for(&cloud, &spec).await;
    let added = r#"{"Sid":"Added meanwhile","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444444444444:root"},"Action":"kms:Encrypt","Resource":"*"}"#;
    let text = ROOT_POLICY.replacen("\"Statement\": [", &format!("\"Statement\": [{added},"), 1);
    cloud.set_policy(&scope(), KEY_ID, &text);
    assert!(apply(&cloud, &planned).await.succeeded());
    let policy = policy_now(&cloud);
    let added: serde_json::Value = serde_json::from_str(added).unwrap();
    assert!(policy.statements().contains(&added));
    assert!(policy.managed_members("aws").contains_key(SID_ACCOUNTS));
}

#[tokio::test]
async fn aws_managed_snapshot_is_blocked_and_untouched() {
    let cloud = MemoryCloud::new();
    cloud.add_key(
        &scope(),
        KEY_ID,
        Some("alias/golden"),
        KeyManager::Customer,
        ROOT_POLICY,
    );
    let managed = cloud.add_key(
        &scope(),
        "99999999-12ab-34cd-56ef-1234567890ab",
        Some("alias/aws/ebs"),
        KeyManager::Aws,
        "{}",
    );
    let snapshot = Snapshot {
        id: SNAPSHOT.into(),
        encrypted: true,
        kms_key_id: Some(managed.clone()),
    };
    cloud.add_image(&scope(), IMAGE, &[snapshot]);
    cloud.set_launch_permissions(&scope(), IMAGE, &[LaunchEntry::Account(STAGING.into())]);

    let spec = load(&spec_text(true, "      - {account: prod}"));
    let planned = plan_for(&cloud, &spec).await;
    let blocked: Vec<_> = planned.blocked().collect();
    assert_eq!(blocked.len(), 1, "{planned:#?}");
    assert_eq!(blocked[0].code, "aws-managed-key");
    assert!(blocked[0].message.contains(&managed));
    assert!(
        planned
            .changes
            .iter()
            .all(|c| !matches!(c, Change::LaunchPermissions(_)))
    );
    apply(&cloud, &planned).await;
    assert_eq!(
        cloud.launch_set(&scope(), IMAGE),
        BTreeSet::from([LaunchEntry::Account(STAGING.into())])
    );
}

#[tokio::test]
async fn snapshot_under_other_key_is_blocked() {
    let cloud = MemoryCloud::new();
    cloud.add_key(
        &scope(),
        KEY_ID,
        Some("alias/golden"),
        KeyManager::Customer,
        ROOT_POLICY,
    );
    let other = cloud.add_key(
        &scope(),
        "88888888-12ab-34cd-56ef-1234567890ab",
        Some("alias/other"),
        KeyManager::Customer,
        ROOT_POLICY,
    );
    cloud.add_image(
        &scope(),
        IMAGE,
        &[Snapshot {
            id: SNAPSHOT.into(),
            encrypted: true,
            kms_key_id: Some(other),
        }],
    );
    let planned = plan_for(&cloud, &load(&spec_text(false, "      - {account: prod}"))).await;
    let codes: Vec<_> = planned.blocked().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, ["wrong-key"]);
}

#[tokio::test]
async fn disabled_key_blocks_its_images() {
    for state in ["Disabled", "PendingDeletion"] {
        let (cloud, _) = world();
        cloud.set_key_state(&scope(), KEY_ID, state);
        let planned = plan_for(&cloud, &load(&spec_text(false, "      - {account: prod}"))).await;
        let key = planned
            .blocked()
            .find(|f| f.code == "key-not-usable")
            .expect("key finding");
        assert!(key.message.contains(state), "{state}: {}", key.message);
        let image = planned
            .blocked()
            .find(|f| f.code == "key-blocked")
            .expect("image finding");
        assert_eq!(image.resource, IMAGE);
        assert_eq!(planned.blocked().count(), 2, "{state}: {planned:#?}");
        assert!(planned.changes.is_empty(), "{state}");
    }
}

#[tokio::test]
async fn missing_image_is_blocked_and_the_others_are_still_planned() {
    let (cloud, _) = world();
    let gone = "ami-0123456789abcdef9";
    let text = spec_text(false, "      - {account: prod}").replace(
        &format!("ids: [{IMAGE}]"),
        &format!("ids: [{IMAGE}, {gone}]"),
    );
    let planned = plan_for(&cloud, &load(&text)).await;

    let blocked: Vec<_> = planned.blocked().collect();
    assert_eq!(blocked.len(), 1, "{planned:#?}");
    assert_eq!(blocked[0].code, "image-not-found");
    assert_eq!(blocked[0].resource, gone);
    for part in [gone, SOURCE, REGION] {
        assert!(blocked[0].message.contains(part), "{}", blocked[0].message);
    }
    assert!(
        blocked[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("deregistered")),
        "{blocked:#?}"
    );
    let launched: Vec<&str> = planned
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::LaunchPermissions(l) => Some(l.image_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(launched, [IMAGE], "{planned:#?}");
}

#[tokio::test]
async fn each_unavailable_state_blocks_with_its_own_reason() {
    for (state, code) in [
        ("pending", "image-pending"),
        ("disabled", "image-disabled"),
        ("deregistered", "image-deregistered"),
        ("failed", "image-not-available"),
    ] {
        let (cloud, _) = world();
        cloud.set_image_state(&scope(), IMAGE, state);
        let planned = plan_for(&cloud, &load(&spec_text(false, "      - {account: prod}"))).await;
        let codes: Vec<&str> = planned.blocked().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, [code], "{state}: {planned:#?}");
        assert!(
            planned
                .changes
                .iter()
                .all(|c| !matches!(c, Change::LaunchPermissions(_))),
            "{state}: an unavailable image is not shared: {planned:#?}"
        );
    }
}

#[tokio::test]
async fn failed_grant_skips_dependent_additions_then_converges() {
    let (cloud, _) = world();
    let spec = load(&spec_text(false, DEFAULT_SHARES));
    cloud.fail_next("PutKeyPolicy", "KMSInternalException");
    let report = apply(&cloud, &plan_for(&cloud, &spec).await).await;
    assert_eq!(report.failed.len(), 1, "{report:#?}");
    assert_eq!(report.skipped.len(), 2, "{report:#?}");
    assert!(
        cloud.launch_set(&scope(), IMAGE).is_empty(),
        "no target may see an image it cannot use"
    );
    assert!(cloud.volume_set(&scope(), SNAPSHOT).is_empty());

    let report = apply(&cloud, &plan_for(&cloud, &spec).await).await;
    assert!(report.succeeded(), "{report:#?}");
    assert!(plan_for(&cloud, &spec).await.is_empty());
}

#[tokio::test]
async fn removal_order_revokes_key_last() {
    let (cloud, _) = world();
    let spec = load(&spec_text(true, "      - {account: prod, copy: true}"));
    apply(&cloud, &plan_for(&cloud, &spec).await).await;
    cloud.clear_calls();
    let empty = load(&spec_text(true, ""));
    let planned = plan_for(&cloud, &empty).await;
    assert_eq!(planned.changes.len(), 3, "{planned:#?}");
    apply(&cloud, &planned).await;
    let mutating: Vec<_> = cloud
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("Modify") || *c == "PutKeyPolicy")
        .collect();
    assert_eq!(
        mutating,
        [
            "ModifyImageAttribute",
            "ModifySnapshotAttribute",
            "PutKeyPolicy"
        ]
    );
    assert!(
        !policy_now(&cloud)
            .managed_members("aws")
            .contains_key(SID_ACCOUNTS)
    );
}

#[tokio::test]
async fn reads_run_concurrently_within_the_bound() {
    let cloud = MemoryCloud::new().with_latency(std::time::Duration::from_millis(5));
    let arn = cloud.add_key(
        &scope(),
        KEY_ID,
        Some("alias/golden"),
        KeyManager::Customer,
        ROOT_POLICY,
    );
    let mut ids = Vec::new();
    for i in 0..60 {
        let id = format!("ami-{i:017x}");
        let snapshot = Snapshot {
            id: format!("snap-{i:017x}"),
            encrypted: true,
            kms_key_id: Some(arn.clone()),
        };
        cloud.add_image(&scope(), &id, &[snapshot]);
        ids.push(id);
    }
    let text = spec_text(false, "      - {account: prod, copy: true}").replace(
        &format!("ids: [{IMAGE}]"),
        &format!("ids: [{}]", ids.join(", ")),
    );
    plan_for(&cloud, &load(&text)).await;
    let peak = cloud.max_in_flight();
    assert!(peak > 1, "reads ran one at a time");
    assert!(
        peak <= amishare::observe::MAX_CALLS_IN_FLIGHT,
        "{peak} calls in flight"
    );
}

const DENY_STATEMENT: &str = r#"{"Sid":"amishare-accounts","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::555555555555:root"},"Action":"kms:ScheduleKeyDeletion","Resource":"*"}"#;

#[tokio::test]
async fn foreign_shaped_managed_statement_blocks_key() {
    let (cloud, _) = world();
    let text = ROOT_POLICY.replacen(
        "\"Statement\": [",
        &format!("\"Statement\": [{DENY_STATEMENT},"),
        1,
    );
    cloud.set_policy(&scope(), KEY_ID, &text);
    let planned = plan_for(&cloud, &load(&spec_text(false, "      - {account: prod}"))).await;
    let codes: BTreeSet<&str> = planned.blocked().map(|f| f.code.as_str()).collect();
    assert_eq!(
        codes,
        BTreeSet::from(["unexpected-managed-statement", "key-blocked"])
    );
    assert!(planned.changes.is_empty(), "{planned:#?}");
    apply(&cloud, &planned).await;
    assert_eq!(
        cloud.policy(&scope(), KEY_ID).unwrap(),
        text,
        "the policy must not change"
    );
}

#[tokio::test]
async fn blocked_image_keeps_its_key_grants() {
    let (cloud, _) = world();
    let spec = load(&spec_text(true, "      - {account: prod}"));
    apply(&cloud, &plan_for(&cloud, &spec).await).await;
    cloud.set_image_state(&scope(), IMAGE, "disabled");
    let planned = plan_for(&cloud, &spec).await;
    assert!(planned.blocked().any(|f| f.code == "image-disabled"));
    assert!(planned.changes.is_empty(), "{planned:#?}");
}

#[tokio::test]
async fn same_key_under_two_names_converges() {
    let (cloud, _) = world();
    let second = "ami-0123456789abcdef9";
    let arn = format!("arn:aws:kms:{REGION}:{SOURCE}:key/{KEY_ID}");
    cloud.add_image(
        &scope(),
        second,
        &[Snapshot {
            id: "snap-0123456789abcdef9".into(),
            encrypted: true,
            kms_key_id: Some(arn),
        }],
    );
    let text = format!(
        "{}  - account: factory\n    region: {REGION}\n    ids: [{second}]\n    key: same\n    share_with:\n      - {{account: \"{STAGING}\"}}\n",
        spec_text(true, "      - {account: prod}")
    )
    .replace("keys:\n", &format!("keys:\n  - {{name: same, account: factory, region: {REGION}, key: {KEY_ID}}}\n"));
    let spec = load(&text);
    assert!(
        apply(&cloud, &plan_for(&cloud, &spec).await)
            .await
            .succeeded()
    );
    let again = plan_for(&cloud, &spec).await;
    assert!(again.is_empty(), "{again:#?}");
    let members = policy_now(&cloud).managed_members("aws");
    assert_eq!(members[SID_ACCOUNTS].len(), 2);
}

#[tokio::test]
async fn shared_snapshot_gets_union_of_copy_targets() {
    let (cloud, arn) = world();
    let second = "ami-0123456789abcdef9";
    cloud.add_image(
        &scope(),
        second,
        &[Snapshot {
            id: SNAPSHOT.into(),
            encrypted: true,
            kms_key_id: Some(arn),
        }],
    );
    let text = format!(
        "{}  - account: factory\n    region: {REGION}\n    ids: [{second}]\n    key: golden\n    share_with:\n      - {{account: \"{STAGING}\", copy: true}}\n",
        spec_text(true, "      - {account: prod, copy: true}")
    );
    let spec = load(&text);
    apply(&cloud, &plan_for(&cloud, &spec).await).await;
    assert_eq!(
        cloud.volume_set(&scope(), SNAPSHOT),
        BTreeSet::from([PROD.to_owned(), STAGING.to_owned()])
    );
    let again = plan_for(&cloud, &spec).await;
    assert!(again.is_empty(), "{again:#?}");
}

#[tokio::test]
async fn encrypted_image_is_never_public() {
    let (cloud, _) = world();
    let text = spec_text(false, "      - {group: all}").replace(
        "settings: {prune: false}",
        "settings: {prune: false, allow_public: true}",
    );
    let planned = plan_for(&cloud, &load(&text)).await;
    let codes: Vec<&str> = planned.blocked().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, ["encrypted-public"]);
}

#[tokio::test]
async fn member_added_after_plan_survives_revoke() {
    let (cloud, _) = world();
    let spec = load(&spec_text(
        true,
        "      - {account: prod}\n      - {account: \"333333333333\"}",
    ));
    apply(&cloud, &plan_for(&cloud, &spec).await).await;
    let fewer = load(&spec_text(true, "      - {account: prod}"));
    let planned = plan_for(&cloud, &fewer).await;
    // Someone else grants another account through the same statement meanwhile.
    let text = cloud.policy(&scope(), KEY_ID).unwrap().replace(
        &format!("\"arn:aws:iam::{PROD}:root\""),
        &format!("\"arn:aws:iam::{PROD}:root\", \"arn:aws:iam::444444444444:root\""),
    );
    cloud.set_policy(&scope(), KEY_ID, &text);
    assert!(apply(&cloud, &planned).await.succeeded());
    let members = policy_now(&cloud).managed_members("aws");
    let expected = BTreeSet::from([
        format!("arn:aws:iam::{PROD}:root"),
        "arn:aws:iam::444444444444:root".to_owned(),
    ]);
    assert_eq!(members[SID_ACCOUNTS], expected);
}

fn selector_world() -> MemoryCloud {
    let (cloud, arn) = world();
    let images = [
        (
            "ami-000000000000000a1",
            "golden-2026-01",
            "platform",
            "2026-01-01T00:00:00.000Z",
        ),
        (
            "ami-000000000000000a2",
            "golden-2026-02",
            "platform",
            "2026-02-01T00:00:00.000Z",
        ),
        (
            "ami-000000000000000a3",
            "golden-2026-03",
            "platform",
            "2026-03-01T00:00:00.000Z",
        ),
        (
            "ami-000000000000000b1",
            "golden-2026-04",
            "data",
            "2026-04-01T00:00:00.000Z",
        ),
        (
            "ami-000000000000000c1",
            "base-2026-05",
            "platform",
            "2026-05-01T00:00:00.000Z",
        ),
    ];
    for (i, (id, name, team, created)) in images.iter().enumerate() {
        let snapshot = Snapshot {
            id: format!("snap-00000000000000{i:03x}"),
            encrypted: true,
            kms_key_id: Some(arn.clone()),
        };
        cloud.add_image(&scope(), id, &[snapshot]);
        cloud.describe_image(&scope(), id, name, &[("team", team)], created);
    }
    cloud
}

fn selector_spec(select: &str) -> Spec {
    load(
        &spec_text(false, "      - {account: prod}")
            .replace(&format!("ids: [{IMAGE}]"), &format!("select: {select}")),
    )
}

#[tokio::test]
async fn selectors_resolve_name_tags_and_newest() {
    let cloud = selector_world();
    let cases = [
        (
            "{name: \"golden-*\"}",
            vec![
                "ami-000000000000000a1",
                "ami-000000000000000a2",
                "ami-000000000000000a3",
                "ami-000000000000000b1",
            ],
        ),
        (
            "{name: \"golden-*\", tags: {team: platform}}",
            vec![
                "ami-000000000000000a1",
                "ami-000000000000000a2",
                "ami-000000000000000a3",
            ],
        ),
        (
            "{name: \"golden-*\", tags: {team: platform}, newest: 2}",
            vec!["ami-000000000000000a2", "ami-000000000000000a3"],
        ),
        (
            "{tags: {team: platform}, newest: 1}",
            vec!["ami-000000000000000c1"],
        ),
        (
            "{name: \"golden-2026-0?\", tags: {team: data}}",
            vec!["ami-000000000000000b1"],
        ),
    ];
    for (select, expected) in cases {
        let spec = selector_spec(select);
        let observed = observe(&cloud, &spec).await.unwrap();
        assert_eq!(observed.selected[&0], expected, "{select}");
        let planned = plan(&spec, &observed);
        let launches = planned
            .changes
            .iter()
            .filter(|c| matches!(c, Change::LaunchPermissions(_)))
            .count();
        assert_eq!(launches, expected.len(), "{select}");
        let note = planned
            .findings
            .iter()
            .find(|f| f.code == "selector-matched")
            .expect("the plan names the matches");
        assert!(
            expected.iter().all(|id| note.message.contains(id)),
            "{select}: {}",
            note.message
        );
    }
}

#[tokio::test]
async fn selector_matching_nothing_warns_or_blocks() {
    let cloud = selector_world();
    let planned = plan_for(&cloud, &selector_spec("{name: \"nothing-*\"}")).await;
    let finding = planned
        .findings
        .iter()
        .find(|f| f.code == "selector-matched-nothing")
        .expect("reported");
    assert_eq!(finding.severity, Severity::Warning);
    let planned = plan_for(
        &cloud,
        &selector_spec("{name: \"nothing-*\", must_match: true}"),
    )
    .await;
    let finding = planned
        .findings
        .iter()
        .find(|f| f.code == "selector-matched-nothing")
        .expect("reported");
    assert_eq!(finding.severity, Severity::Blocked);
}

#[tokio::test]
async fn launch_permissions_over_the_limit_are_refused() {
    let cloud = MemoryCloud::new();
    cloud.add_key(
        &scope(),
        KEY_ID,
        Some("alias/golden"),
        KeyManager::Customer,
        ROOT_POLICY,
    );
    cloud.add_image(
        &scope(),
        IMAGE,
        &[Snapshot {
            id: SNAPSHOT.into(),
            encrypted: false,
            kms_key_id: None,
        }],
    );
    let many: String = (0..1001)
        .map(|i| format!("\n      - {{account: \"{:012}\"}}", 500_000_000_000u64 + i))
        .collect();
    let planned = plan_for(
        &cloud,
        &load(&spec_text(false, &many).replace("    key: golden\n", "")),
    )
    .await;
    assert!(
        planned
            .blocked()
            .any(|f| f.code == "too-many-launch-permissions"),
        "{:#?}",
        planned.findings
    );
    assert!(
        !planned
            .changes
            .iter()
            .any(|c| matches!(c, Change::LaunchPermissions(_)))
    );
}

#[tokio::test]
async fn key_policy_over_the_limit_is_refused() {
    let (cloud, _) = world();
    // Each account adds a root ARN of about 40 bytes to the statement.
    let many: String = (0..1000)
        .map(|i| format!("\n      - {{account: \"{:012}\"}}", 500_000_000_000u64 + i))
        .collect();
    let planned = plan_for(&cloud, &load(&spec_text(false, &many))).await;
    let too_large = planned
        .blocked()
        .find(|f| f.code == "key-policy-too-large")
        .expect("the key is blocked");
    // The message gives the new size, the limit and what foreign statements take.
    let message = &too_large.message;
    assert!(
        message.contains("over the KMS limit of 32768 bytes"),
        "{message}"
    );
    let bytes: Vec<usize> = message
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    assert_eq!(bytes.len(), 3, "{message}");
    assert!(bytes[0] > 32_768, "{message}");
    assert!(bytes[2] > 0, "{message}");
    assert!(bytes[2] < 1000, "{message}");
    assert!(
        planned.changes.is_empty(),
        "nothing under the key is shared without its grant"
    );
    apply(&cloud, &planned).await;
    assert_eq!(cloud.mutating_calls(), 0);
}

#[tokio::test]
async fn foreign_orphaned_principal_blocks_key() {
    let (cloud, _) = world();
    let orphan = r#"{"Sid":"Old admin","Effect":"Allow","Principal":{"AWS":"AROAEXAMPLEID87654321"},"Action":"kms:*","Resource":"*"}"#;
    let text = ROOT_POLICY.replacen("\"Statement\": [", &format!("\"Statement\": [{orphan},"), 1);
    cloud.set_policy(&scope(), KEY_ID, &text);
    let planned = plan_for(&cloud, &load(&spec_text(false, "      - {account: prod}"))).await;
    let finding = planned
        .blocked()
        .find(|f| f.code == "foreign-orphaned-principal")
        .expect("blocked");
    assert!(
        finding.message.contains("AROAEXAMPLEID87654321"),
        "{}",
        finding.message
    );
    assert!(
        finding.message.contains("rejects every PutKeyPolicy"),
        "{}",
        finding.message
    );
    apply(&cloud, &planned).await;
    assert_eq!(
        cloud.policy(&scope(), KEY_ID).unwrap(),
        text,
        "the foreign statement is not rewritten"
    );
}

#[tokio::test]
async fn removal_covered_by_organization_warns() {
    let (cloud, _) = world();
    cloud.set_launch_permissions(&scope(), IMAGE, &[LaunchEntry::Account(STAGING.into())]);
    let spec = load(&spec_text(
        true,
        &format!("      - {{organization: \"{ORG}\"}}"),
    ));
    let planned = plan_for(&cloud, &spec).await;
    let warning = planned
        .findings
        .iter()
        .find(|f| f.code == "removal-still-covered")
        .expect("warned");
    assert!(
        warning.message.contains(STAGING) && warning.message.contains(ORG),
        "{}",
        warning.message
    );
}

#[tokio::test]
async fn deprecated_image_is_blocked() {
    let (cloud, _) = world();
    cloud.set_deprecation_time(&scope(), IMAGE, "2020-01-01T00:00:00.000Z");
    let planned = plan_for(&cloud, &load(&spec_text(false, "      - {account: prod}"))).await;
    let blocked = planned
        .blocked()
        .find(|f| f.code == "image-deprecated")
        .expect("blocked");
    assert!(
        blocked.message.contains("2020-01-01"),
        "{}",
        blocked.message
    );
    assert!(
        planned
            .changes
            .iter()
            .all(|c| !matches!(c, Change::LaunchPermissions(_))),
        "a deprecated image is not shared: {planned:#?}"
    );
    cloud.set_deprecation_time(&scope(), IMAGE, "2999-01-01T00:00:00.000Z");
    let planned = plan_for(&cloud, &load(&spec_text(false, "      - {account: prod}"))).await;
    assert!(
        !planned
            .findings
            .iter()
            .any(|f| f.code == "image-deprecated"),
        "a future deprecation is not reported"
    );
    assert!(
        planned
            .changes
            .iter()
            .any(|c| matches!(c, Change::LaunchPermissions(_))),
        "{planned:#?}"
    );
}

/// A key policy whose only administrative grant is a statement amishare owns under a
/// `Sid` it does not write, as an older version or a hand edit might leave.
const LEGACY_ADMIN_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "amishare-legacy",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
      "Action": "kms:*",
      "Resource": "*"
    }
  ]
}"#;

#[tokio::test]
async fn plan_blocks_pruning_last_admin() {
    let (cloud, _) = world();
    cloud.set_policy(&scope(), KEY_ID, LEGACY_ADMIN_POLICY);
    let planned = plan_for(&cloud, &load(&spec_text(true, "      - {account: prod}"))).await;

    let blocked: Vec<_> = planned.blocked().collect();
    assert_eq!(blocked.len(), 1, "{planned:#?}");
    assert_eq!(blocked[0].code, "key-lockout");
    let message = &blocked[0].message;
    assert!(message.contains("`amishare-legacy`"), "{message}");
    assert!(
        message.contains("arn:aws:iam::111111111111:root"),
        "{message}"
    );
    // Without the key grant, prod must not get the image either.
    assert!(planned.changes.is_empty(), "{planned:#?}");

    // Without pruning the statement is kept, so nothing is lost.
    let kept = plan_for(&cloud, &load(&spec_text(false, "      - {account: prod}"))).await;
    assert_eq!(kept.blocked().count(), 0, "{kept:#?}");
}

#[tokio::test]
async fn apply_rejects_root_lockout() {
    let (cloud, _) = world();
    // Planned while a foreign statement still gives the root its rights ...
    let both = LEGACY_ADMIN_POLICY.replacen(
        "\"Statement\": [",
        "\"Statement\": [{\"Sid\": \"Admins\", \"Effect\": \"Allow\", \"Principal\": {\"AWS\": \"111111111111\"}, \"Action\": \"kms:PutKeyPolicy\", \"Resource\": \"*\"},",
        1,
    );
    cloud.set_policy(&scope(), KEY_ID, &both);
    let spec = load(&spec_text(true, "      - {account: prod}"));
    let planned = plan_for(&cloud, &spec).await;
    assert_eq!(planned.blocked().count(), 0, "{planned:#?}");
    // ... which someone removes before the apply.
    cloud.set_policy(&scope(), KEY_ID, LEGACY_ADMIN_POLICY);

    let report = apply(&cloud, &planned).await;
    let lockouts: Vec<String> = report
        .failed
        .iter()
        .map(|(_, err)| err.to_string())
        .filter(|m| m.contains("no longer let"))
        .collect();
    assert_eq!(lockouts.len(), 1, "{report:#?}");
    assert!(lockouts[0].contains("`amishare-legacy`"), "{}", lockouts[0]);
    // The grant went in; dropping the statement did not.
    let now = policy_now(&cloud);
    let legacy: serde_json::Value = serde_json::from_str(LEGACY_ADMIN_POLICY).unwrap();
    assert!(
        now.statements().contains(&legacy["Statement"][0]),
        "{now:#?}"
    );
    assert!(now.managed_members("aws").contains_key(SID_ACCOUNTS));
}

#[tokio::test]
async fn lockout_guard_covers_caller() {
    let (cloud, _) = world();
    let caller = "arn:aws:sts::111111111111:assumed-role/amishare/amishare";
    cloud.set_caller(SOURCE, caller);
    // The root may change the policy through a foreign statement; the caller only
    // through a statement amishare owns.
    let policy = ROOT_POLICY.replacen(
        "\"Statement\": [",
        "\"Statement\": [{\"Sid\": \"amishare-operators\", \"Effect\": \"Allow\", \"Principal\": {\"AWS\": \"arn:aws:iam::111111111111:role/pipelines/amishare\"}, \"Action\": \"kms:*\", \"Resource\": \"*\"},",
        1,
    ).replace("arn:aws:iam::111111111111:root", "arn:aws:iam::111111111111:role/admin");
    cloud.set_policy(&scope(), KEY_ID, &policy);
    let planned = plan_for(&cloud, &load(&spec_text(true, "      - {account: prod}"))).await;
    let blocked: Vec<_> = planned.blocked().collect();
    assert_eq!(blocked.len(), 1, "{planned:#?}");
    assert!(
        blocked[0].message.contains(caller),
        "{}",
        blocked[0].message
    );
    assert!(
        blocked[0].message.contains("`amishare-operators`"),
        "{}",
        blocked[0].message
    );
}

#[tokio::test]
async fn image_selected_by_two_entries_is_blocked() {
    let cloud = selector_world();
    let text = format!(
        "{}  - account: factory\n    region: {REGION}\n    select: {{name: \"golden-2026-0?\", tags: {{team: platform}}}}\n    key: golden\n    share_with:\n      - {{account: \"{STAGING}\"}}\n",
        spec_text(false, "      - {account: prod}")
            .replace(&format!("ids: [{IMAGE}]"), "ids: [ami-000000000000000a2]")
    );
    let spec = load(&text);
    let planned = plan_for(&cloud, &spec).await;

    let blocked: Vec<_> = planned
        .findings
        .iter()
        .filter(|f| f.code == "image-selected-twice")
        .collect();
    assert_eq!(blocked.len(), 1, "{:#?}", planned.findings);
    assert_eq!(blocked[0].severity, Severity::Blocked);
    assert_eq!(blocked[0].resource, "ami-000000000000000a2");
    assert!(
        blocked[0]
            .message
            .contains("test.yaml: images[0] and test.yaml: images[1]"),
        "{}",
        blocked[0].message
    );

    let launched: BTreeSet<String> = planned
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::LaunchPermissions(change) => Some(change.image_id.clone()),
            _ => None,
        })
        .collect();
    let expected: BTreeSet<String> = ["ami-000000000000000a1", "ami-000000000000000a3"]
        .map(String::from)
        .into();
    assert_eq!(launched, expected, "only images selected once change");
}

#[tokio::test]
async fn policy_that_cannot_be_kept_exactly_is_blocked() {
    for (field, text) in [
        (
            "`Effect` twice",
            ROOT_POLICY.replace("\"Effect\": \"Deny\",", "\"Effect\": \"Deny\", \"Effect\": \"Allow\","),
        ),
        (
            "123456789012345678901234567890",
            ROOT_POLICY.replace(
                "{\"Bool\": {\"aws:MultiFactorAuthPresent\": \"false\"}}",
                "{\"NumericLessThan\": {\"kms:GrantConstraintType\": 123456789012345678901234567890}}",
            ),
        ),
    ] {
        let (cloud, _) = world();
        cloud.set_policy(&scope(), KEY_ID, &text);
        let planned = plan_for(&cloud, &load(&spec_text(false, "      - {account: prod}"))).await;
        let blocked: Vec<_> = planned.blocked().collect();
        assert_eq!(blocked.len(), 2, "the key and its image: {planned:#?}");
        let key = blocked
            .iter()
            .find(|f| f.code == "invalid-key-policy")
            .expect("the key is blocked");
        assert!(key.message.contains(field), "{}", key.message);
        assert!(planned.changes.is_empty(), "{planned:#?}");
    }
}

#[tokio::test]
async fn many_undeclared_entries_make_one_warning() {
    let (cloud, _) = world();
    let stray: Vec<LaunchEntry> = (0..25)
        .map(|i| LaunchEntry::Account(format!("{:012}", 600_000_000_000u64 + i)))
        .collect();
    cloud.set_launch_permissions(&scope(), IMAGE, &stray);
    let planned = plan_for(&cloud, &load(&spec_text(false, "      - {account: prod}"))).await;
    let warnings: Vec<_> = planned
        .findings
        .iter()
        .filter(|f| f.code == "undeclared-launch-permission")
        .collect();
    assert_eq!(warnings.len(), 1, "{planned:#?}");
    let message = &warnings[0].message;
    assert!(
        message.starts_with("25 entries are not declared"),
        "{message}"
    );
    assert!(message.contains("account 600000000000"), "{message}");
    assert!(message.contains("and 20 more"), "{message}");
}
