//! Partial failure, throttling and concurrent writers against the in-memory AWS: an
//! apply that fails anywhere converges on the next run, and nothing amishare does not
//! own is touched.

use std::collections::BTreeSet;
use std::path::Path;

use amishare::apply::apply;
use amishare::aws::memory::MemoryCloud;
use amishare::model::{KeyManager, LaunchEntry, Scope, Snapshot};
use amishare::observe::observe;
use amishare::plan::{Plan, plan};
use amishare::policy::Policy;
use amishare::spec::{self, Spec};

const FOREIGN: &str = r#"{"Sid":"Foreign","Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"kms:ScheduleKeyDeletion","Resource":"*"}"#;
const STRAY: &str = "777777777777";

fn policy(account: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"root","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}},{FOREIGN}]}}"#
    )
}

fn scopes() -> [Scope; 2] {
    [
        Scope::new("111111111111", "us-east-1"),
        Scope::new("444444444444", "eu-west-1"),
    ]
}

const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

/// Two accounts, each with a key and two images of two snapshots, and a stray share.
fn world() -> MemoryCloud {
    let cloud = MemoryCloud::new();
    for (n, scope) in scopes().iter().enumerate() {
        let arn = cloud.add_key(
            scope,
            KEY_ID,
            Some("alias/golden"),
            KeyManager::Customer,
            &policy(&scope.account),
        );
        for i in 0..2 {
            let snapshots: Vec<Snapshot> = (0..2)
                .map(|s| Snapshot {
                    id: format!("snap-{n}{i}{s}0000000000000"),
                    encrypted: true,
                    kms_key_id: Some(arn.clone()),
                })
                .collect();
            cloud.add_image(scope, &format!("ami-{n}{i}000000000000000"), &snapshots);
        }
    }
    cloud.set_launch_permissions(
        &scopes()[0],
        "ami-00000000000000000",
        &[LaunchEntry::Account(STRAY.into())],
    );
    cloud
}

fn spec() -> Spec {
    spec_with(false, "")
}

/// Builds the two-account spec, with `extra` share entries on every image.
fn spec_with(prune: bool, extra: &str) -> Spec {
    let mut text = format!(
        "version: 1\nsettings: {{prune: {prune}}}\naccounts:\n  - {{name: a, id: \"111111111111\"}}\n  - {{name: b, id: \"444444444444\"}}\n  - {{name: prod, id: \"222222222222\"}}\nkeys:\n  - {{name: ka, account: a, region: us-east-1, key: alias/golden}}\n  - {{name: kb, account: b, region: eu-west-1, key: alias/golden}}\nimages:\n",
    );
    for (n, (account, region, key)) in [("a", "us-east-1", "ka"), ("b", "eu-west-1", "kb")]
        .iter()
        .enumerate()
    {
        text.push_str(&format!(
            "  - account: {account}\n    region: {region}\n    key: {key}\n    ids: [ami-{n}0000000000000000, ami-{n}1000000000000000]\n    share_with:\n      - {{account: prod, copy: true}}\n      - {{account: \"333333333333\"}}\n      - {{organization: \"arn:aws:organizations::111111111111:organization/o-abcde12345\"}}\n{extra}"
        ));
    }
    spec::load_str(Path::new("faults.yaml"), &text).expect("valid")
}

async fn plan_for(cloud: &MemoryCloud, spec: &Spec) -> Plan {
    plan(spec, &observe(cloud, spec).await.expect("observe succeeds"))
}

/// Checks what must hold after any apply: foreign statements and the stray share kept.
fn untouched(cloud: &MemoryCloud, case: &str) {
    let foreign: serde_json::Value = serde_json::from_str(FOREIGN).expect("FOREIGN is JSON");
    for scope in scopes() {
        let text = cloud.policy(&scope, KEY_ID).expect("key exists");
        let policy = Policy::parse(&text).expect("policy parses");
        assert!(
            policy.statements().contains(&foreign),
            "{case}: foreign statement changed in {scope}"
        );
    }
    assert!(
        cloud
            .launch_set(&scopes()[0], "ami-00000000000000000")
            .contains(&LaunchEntry::Account(STRAY.into())),
        "{case}: stray share removed"
    );
}

/// Operations an apply calls that a failure is injected into, one call at a time.
const STEPS: [&str; 4] = [
    "GetKeyPolicy",
    "PutKeyPolicy",
    "ModifySnapshotAttribute",
    "ModifyImageAttribute",
];

/// Applies `spec` on worlds from `fresh`, failing each call of each of [`STEPS`] in
/// turn, then applies again. After each apply, `check` must hold; after the second, the
/// plan must be empty. The failed call must be reported with its AWS error code and
/// request id. Returns the number of cases run.
async fn fail_each_call<F, Fut>(fresh: F, spec: &Spec, check: fn(&MemoryCloud, &str)) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = MemoryCloud>,
{
    let clean = fresh().await;
    let planned = plan_for(&clean, spec).await;
    clean.clear_calls();
    assert!(apply(&clean, &planned).await.succeeded());
    let calls = clean.calls();

    let mut cases = 0;
    for operation in STEPS {
        let count = calls.iter().filter(|c| **c == operation).count();
        assert!(count > 0, "{operation} is not called");
        for k in 0..count {
            let case = format!("{operation} call {k}");
            let cloud = fresh().await;
            let planned = plan_for(&cloud, spec).await;
            cloud.fail_nth(operation, k, "InternalError");
            let report = apply(&cloud, &planned).await;
            assert_eq!(report.failed.len(), 1, "{case}: {report:#?}");
            let failed = report.failed[0].1.to_string();
            assert!(failed.contains("InternalError"), "{case}: {failed}");
            assert!(failed.contains("request id"), "{case}: {failed}");
            check(&cloud, &case);

            let report = apply(&cloud, &plan_for(&cloud, spec).await).await;
            assert!(report.succeeded(), "{case}: second run {report:#?}");
            let last = plan_for(&cloud, spec).await;
            assert!(last.is_empty(), "{case}: not converged {last:#?}");
            check(&cloud, &case);
            cases += 1;
        }
    }
    cases
}

#[tokio::test]
async fn failure_at_every_step_converges_next_run() {
    let cases = fail_each_call(|| async { world() }, &spec(), untouched).await;
    assert!(cases >= 10, "{cases} cases");
}

/// An account shared with before, and dropped from the spec since.
const DROPPED: &str = "555555555555";

#[tokio::test]
async fn failure_at_every_removal_step_converges_next_run() {
    let before = spec_with(
        false,
        &format!("      - {{account: \"{DROPPED}\", copy: true}}\n"),
    );
    let shared = || async {
        let cloud = world();
        // The stray share is not in either spec; pruning removes it with the rest.
        cloud.set_launch_permissions(&scopes()[0], "ami-00000000000000000", &[]);
        assert!(
            apply(&cloud, &plan_for(&cloud, &before).await)
                .await
                .succeeded()
        );
        cloud
    };
    let cases = fail_each_call(shared, &spec_with(true, ""), revoked_last).await;
    assert!(cases >= 8, "{cases} cases");
}

/// Checks that the dropped account keeps its key grant while any image under the key
/// still gives it launch or create-volume permission, and that foreign statements stay.
fn revoked_last(cloud: &MemoryCloud, case: &str) {
    let foreign: serde_json::Value = serde_json::from_str(FOREIGN).expect("FOREIGN is JSON");
    for (n, scope) in scopes().iter().enumerate() {
        let policy = Policy::parse(&cloud.policy(scope, KEY_ID).expect("key exists"))
            .expect("policy parses");
        assert!(
            policy.statements().contains(&foreign),
            "{case}: foreign statement changed"
        );
        let granted = policy
            .managed_members("aws")
            .get("amishare-accounts")
            .is_some_and(|m| m.contains(&format!("arn:aws:iam::{DROPPED}:root")));
        for i in 0..2 {
            let image = format!("ami-{n}{i}000000000000000");
            let launch = cloud
                .launch_set(scope, &image)
                .contains(&LaunchEntry::Account(DROPPED.into()));
            let volume = (0..2).any(|s| {
                cloud
                    .volume_set(scope, &format!("snap-{n}{i}{s}0000000000000"))
                    .contains(DROPPED)
            });
            assert!(
                granted || !(launch || volume),
                "{case}: {image} is still shared with {DROPPED} but its key grant is gone"
            );
        }
    }
}

#[tokio::test]
async fn launch_without_grant_is_skipped() {
    let spec = spec();
    let cloud = world();
    let planned = plan_for(&cloud, &spec).await;
    cloud.fail_next("PutKeyPolicy", "InternalError");
    let report = apply(&cloud, &planned).await;
    assert!(!report.skipped.is_empty(), "{report:#?}");
    // The key whose grant failed shares none of its images yet.
    let failed_key_scope = scopes().into_iter().find(|s| {
        let policy = Policy::parse(&cloud.policy(s, KEY_ID).unwrap()).unwrap();
        policy.managed_members("aws").is_empty()
    });
    let scope = failed_key_scope.expect("one key kept its old policy");
    let n = if scope == scopes()[0] { 0 } else { 1 };
    let expected: BTreeSet<LaunchEntry> = if n == 0 {
        [LaunchEntry::Account(STRAY.into())].into()
    } else {
        BTreeSet::new()
    };
    assert_eq!(
        cloud.launch_set(&scope, &format!("ami-{n}1000000000000000")),
        BTreeSet::new()
    );
    assert_eq!(
        cloud.launch_set(&scope, &format!("ami-{n}0000000000000000")),
        expected
    );
}

#[tokio::test]
async fn throttling_storm_still_converges() {
    use amishare::aws::retry::{RetryPolicy, Retrying};
    use std::time::Duration;
    let spec = spec();
    let memory = world();
    for operation in [
        "DescribeImages",
        "DescribeImageAttribute",
        "GetKeyPolicy",
        "PutKeyPolicy",
        "ModifySnapshotAttribute",
        "ModifyImageAttribute",
    ] {
        for code in [
            "RequestLimitExceeded",
            "ThrottlingException",
            "Throttling",
            "InternalError",
        ] {
            memory.fail_next(operation, code);
        }
    }
    let policy = RetryPolicy {
        max_elapsed: Duration::from_secs(10),
        first_wait: Duration::from_millis(1),
        max_wait: Duration::from_millis(4),
    };
    let cloud = Retrying::new(memory, policy);
    let planned = plan(
        &spec,
        &observe(&cloud, &spec).await.expect("observe retries"),
    );
    let report = apply(&cloud, &planned).await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(
        cloud.retries(),
        24,
        "four failures of each of six operations"
    );
    let last = plan(&spec, &observe(&cloud, &spec).await.unwrap());
    assert!(last.is_empty(), "{last:#?}");
    untouched(cloud.inner(), "storm");
}

#[tokio::test]
async fn concurrent_applies_keep_both_grants() {
    use std::time::Duration;
    let scope = scopes()[0].clone();
    let cloud = MemoryCloud::new().with_latency(Duration::from_millis(3));
    let arn = cloud.add_key(
        &scope,
        KEY_ID,
        Some("alias/golden"),
        KeyManager::Customer,
        &policy(&scope.account),
    );
    for image in ["ami-0000000000000000a", "ami-0000000000000000b"] {
        let snapshot = Snapshot {
            id: image.replace("ami", "snap"),
            encrypted: true,
            kms_key_id: Some(arn.clone()),
        };
        cloud.add_image(&scope, image, &[snapshot]);
    }
    let spec_for = |image: &str, target: &str| {
        let text = format!(
            "version: 1\naccounts:\n  - {{name: a, id: \"111111111111\"}}\nkeys:\n  - {{name: k, account: a, region: us-east-1, key: alias/golden}}\nimages:\n  - {{account: a, region: us-east-1, key: k, ids: [{image}], share_with: [{{account: \"{target}\"}}]}}\n"
        );
        spec::load_str(Path::new("race.yaml"), &text).unwrap()
    };
    let (first, second) = (
        spec_for("ami-0000000000000000a", "222222222222"),
        spec_for("ami-0000000000000000b", "333333333333"),
    );
    let (plan_a, plan_b) = (
        plan_for(&cloud, &first).await,
        plan_for(&cloud, &second).await,
    );
    let (a, b) = tokio::join!(apply(&cloud, &plan_a), apply(&cloud, &plan_b));
    assert!(a.succeeded(), "{a:#?}");
    assert!(b.succeeded(), "{b:#?}");
    let members = Policy::parse(&cloud.policy(&scope, KEY_ID).unwrap())
        .unwrap()
        .managed_members("aws");
    let expected = BTreeSet::from([
        "arn:aws:iam::222222222222:root".to_owned(),
        "arn:aws:iam::333333333333:root".to_owned(),
    ]);
    assert_eq!(members["amishare-accounts"], expected);
}

#[tokio::test]
async fn retries_bounded_in_time() {
    use amishare::aws::Cloud;
    use amishare::aws::retry::{RetryPolicy, Retrying};
    use std::time::Duration;
    let memory = world();
    let scope = scopes()[0].clone();
    for _ in 0..1000 {
        memory.fail_next("GetKeyPolicy", "ThrottlingException");
    }
    let policy = RetryPolicy {
        max_elapsed: Duration::from_millis(50),
        first_wait: Duration::from_millis(1),
        max_wait: Duration::from_millis(4),
    };
    let cloud = Retrying::new(memory, policy);
    let err = cloud.get_key_policy(&scope, KEY_ID).await.unwrap_err();
    assert!(err.is_code("ThrottlingException"), "{err}");
    let retries = cloud.retries();
    assert!((1..1000).contains(&retries), "{retries} retries");

    // An error that retrying cannot fix comes back from the first attempt.
    let memory = world();
    memory.fail_next("GetKeyPolicy", "AccessDeniedException");
    let cloud = Retrying::new(memory, policy);
    let err = cloud.get_key_policy(&scope, KEY_ID).await.unwrap_err();
    assert!(err.is_code("AccessDeniedException"), "{err}");
    assert_eq!(cloud.retries(), 0);
}
