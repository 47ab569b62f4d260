//! End-to-end: the amishare binary against the moto server with our fidelity layer,
//! through the real AWS SDK. Each test works in its own accounts, so tests share one
//! server and still run in parallel.

mod copies;
mod keys;
mod rig;
mod saved;
mod selectors;

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, ImageAttributeName, LaunchPermission,
    LaunchPermissionModifications, SnapshotAttributeName,
};
use rig::{REGION, rig, spec_dir};

const MUTATING: [&str; 3] = [
    "ModifyImageAttribute",
    "ModifySnapshotAttribute",
    "PutKeyPolicy",
];
const ORG: &str = "arn:aws:organizations::111111111111:organization/o-abcde12345";
const FOREIGN: &str = r#"{"Sid":"Foreign audit","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"kms:DescribeKey","Resource":"*"}"#;

/// A distinct 12-digit account id per test, so tests do not see each other's state.
fn account(n: u64) -> String {
    format!("{:012}", 100_000_000_000 + n)
}

struct World {
    source: String,
    target: String,
    image_id: String,
    snapshot_id: String,
    key_id: String,
    ec2: aws_sdk_ec2::Client,
    kms: aws_sdk_kms::Client,
}

/// Seeds a source account with a customer managed key and an image whose snapshot is
/// under it (or under the account's `aws/ebs` key when `aws_managed`).
async fn seed(n: u64, aws_managed: bool) -> World {
    let source = account(n);
    let config = rig().config(&source).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let kms = aws_sdk_kms::Client::new(&config);
    let policy = format!(
        r#"{{"Version":"2012-10-17","Id":"key-default-1","Statement":[{{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{source}:root"}},"Action":"kms:*","Resource":"*"}},{FOREIGN}]}}"#
    );
    let key = kms
        .create_key()
        .policy(policy)
        .send()
        .await
        .expect("CreateKey");
    let key_id = key.key_metadata().expect("metadata").key_id().to_owned();
    kms.create_alias()
        .alias_name("alias/golden")
        .target_key_id(&key_id)
        .send()
        .await
        .expect("CreateAlias");

    let mut volume = ec2
        .create_volume()
        .availability_zone(format!("{REGION}a"))
        .size(8)
        .encrypted(true);
    if !aws_managed {
        volume = volume.kms_key_id(&key_id);
    }
    let volume = volume.send().await.expect("CreateVolume");
    let snapshot = ec2
        .create_snapshot()
        .volume_id(volume.volume_id().expect("volume id"))
        .send()
        .await
        .expect("CreateSnapshot");
    let snapshot_id = snapshot.snapshot_id().expect("snapshot id").to_owned();
    let mapping = BlockDeviceMapping::builder()
        .device_name("/dev/xvda")
        .ebs(
            EbsBlockDevice::builder()
                .snapshot_id(&snapshot_id)
                .volume_size(8)
                .build(),
        )
        .build();
    let image = ec2
        .register_image()
        .name(format!("golden-{n}"))
        .root_device_name("/dev/xvda")
        .block_device_mappings(mapping)
        .send()
        .await
        .expect("RegisterImage");
    World {
        source,
        target: account(n + 500),
        image_id: image.image_id().expect("image id").to_owned(),
        snapshot_id,
        key_id,
        ec2,
        kms,
    }
}

impl World {
    /// Registers another image from a new snapshot under the same key.
    async fn another_image(&self, name: &str) -> String {
        let volume = self
            .ec2
            .create_volume()
            .availability_zone(format!("{REGION}a"))
            .size(8)
            .encrypted(true)
            .kms_key_id(&self.key_id)
            .send()
            .await
            .expect("CreateVolume");
        let snapshot = self
            .ec2
            .create_snapshot()
            .volume_id(volume.volume_id().expect("volume id"))
            .send()
            .await
            .expect("CreateSnapshot");
        let mapping = BlockDeviceMapping::builder()
            .device_name("/dev/xvda")
            .ebs(
                EbsBlockDevice::builder()
                    .snapshot_id(snapshot.snapshot_id().expect("snapshot id"))
                    .volume_size(8)
                    .build(),
            )
            .build();
        let image = self
            .ec2
            .register_image()
            .name(name)
            .root_device_name("/dev/xvda")
            .block_device_mappings(mapping)
            .send()
            .await
            .expect("RegisterImage");
        image.image_id().expect("image id").to_owned()
    }

    fn spec(&self, prune: bool, shares: &str) -> String {
        let (source, image) = (&self.source, &self.image_id);
        format!(
            "version: 1\nsettings: {{prune: {prune}}}\naccounts:\n  - {{name: factory, id: \"{source}\", role_arn: \"arn:aws:iam::{source}:role/amishare\"}}\n  - {{name: prod, id: \"{}\"}}\nkeys:\n  - {{name: golden, account: factory, region: {REGION}, key: alias/golden}}\nimages:\n  - account: factory\n    region: {REGION}\n    ids: [{image}]\n    key: golden\n    share_with:\n{shares}\n",
            self.target
        )
    }

    fn default_shares(&self) -> String {
        format!("      - {{account: prod, copy: true}}\n      - {{organization: \"{ORG}\"}}")
    }

    async fn launch(&self) -> BTreeSet<String> {
        let output = self
            .ec2
            .describe_image_attribute()
            .image_id(&self.image_id)
            .attribute(ImageAttributeName::LaunchPermission)
            .send()
            .await
            .expect("DescribeImageAttribute");
        output
            .launch_permissions()
            .iter()
            .map(|p| {
                p.user_id()
                    .or(p.organization_arn())
                    .or(p.organizational_unit_arn())
                    .map(str::to_owned)
                    .unwrap_or_else(|| "all".to_owned())
            })
            .collect()
    }

    async fn volume_users(&self) -> BTreeSet<String> {
        let output = self
            .ec2
            .describe_snapshot_attribute()
            .snapshot_id(&self.snapshot_id)
            .attribute(SnapshotAttributeName::CreateVolumePermission)
            .send()
            .await
            .expect("DescribeSnapshotAttribute");
        output
            .create_volume_permissions()
            .iter()
            .filter_map(|p| p.user_id().map(str::to_owned))
            .collect()
    }

    async fn policy(&self) -> serde_json::Value {
        let output = self
            .kms
            .get_key_policy()
            .key_id(&self.key_id)
            .policy_name("default")
            .send()
            .await
            .expect("GetKeyPolicy");
        serde_json::from_str(output.policy().expect("policy")).expect("policy is JSON")
    }

    async fn add_launch(&self, account: &str) {
        let add = LaunchPermissionModifications::builder()
            .add(LaunchPermission::builder().user_id(account).build())
            .build();
        self.ec2
            .modify_image_attribute()
            .image_id(&self.image_id)
            .launch_permission(add)
            .send()
            .await
            .expect("ModifyImageAttribute");
    }

    fn mutating_calls(&self) -> usize {
        rig()
            .calls(&self.source)
            .iter()
            .filter(|c| MUTATING.contains(&c.as_str()))
            .count()
    }
}

/// Runs `plan` on `spec` and checks that it exits 1 with each of `needles` on stdout.
fn plan_blocked(dir: &std::path::Path, spec: &std::path::Path, needles: &[&str]) {
    let plan = rig().amishare(dir, &["plan", spec.to_str().expect("UTF-8 path")]);
    assert_eq!(plan.status.code(), Some(1), "{}", out(&plan));
    let stdout = String::from_utf8_lossy(&plan.stdout);
    for needle in needles {
        assert!(stdout.contains(needle), "`{needle}`: {}", out(&plan));
    }
}

fn out(output: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn statements(policy: &serde_json::Value) -> Vec<serde_json::Value> {
    policy["Statement"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn plan_apply_plan_converges() {
    let world = seed(1, false).await;
    let (dir, spec) = spec_dir(&world.spec(false, &world.default_shares()));
    let spec = spec.to_str().unwrap();
    let before = world.policy().await;

    let plan = rig().amishare(dir.path(), &["plan", spec, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", out(&plan));
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains(&format!(
            "+ launch permission: account {} (prod)",
            world.target
        )),
        "{}",
        out(&plan)
    );
    assert!(text.contains("~ key policy of `golden`"), "{}", out(&plan));

    let apply = rig().amishare(dir.path(), &["apply", "--auto-approve", spec]);
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    assert!(
        String::from_utf8_lossy(&apply.stdout).contains("Converged"),
        "{}",
        out(&apply)
    );

    assert_eq!(
        world.launch().await,
        BTreeSet::from([world.target.clone(), ORG.to_owned()])
    );
    assert_eq!(
        world.volume_users().await,
        BTreeSet::from([world.target.clone()])
    );
    let policy = world.policy().await;
    let sids: BTreeSet<String> = statements(&policy)
        .iter()
        .filter_map(|s| s["Sid"].as_str().map(str::to_owned))
        .collect();
    assert!(
        sids.contains("amishare-accounts") && sids.contains("amishare-organizations"),
        "{policy:#}"
    );
    for statement in statements(&before) {
        assert!(
            statements(&policy).contains(&statement),
            "statement changed: {statement:#}"
        );
    }

    let again = rig().amishare(dir.path(), &["plan", spec, "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", out(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("No changes"),
        "{}",
        out(&again)
    );
}

#[tokio::test]
async fn second_apply_makes_no_mutating_call() {
    let world = seed(2, false).await;
    let (dir, spec) = spec_dir(&world.spec(false, &world.default_shares()));
    let spec = spec.to_str().unwrap();
    let first = rig().amishare(dir.path(), &["apply", "--auto-approve", spec]);
    assert_eq!(first.status.code(), Some(0), "{}", out(&first));
    let after_first = world.mutating_calls();
    assert!(
        after_first >= 3,
        "the first apply made {after_first} mutating calls"
    );

    let second = rig().amishare(dir.path(), &["apply", "--auto-approve", spec]);
    assert_eq!(second.status.code(), Some(0), "{}", out(&second));
    assert_eq!(
        world.mutating_calls(),
        after_first,
        "{:?}",
        rig().calls(&world.source)
    );
}

#[tokio::test]
async fn target_account_sees_shared_image() {
    let world = seed(3, false).await;
    let (dir, spec) = spec_dir(&world.spec(false, &world.default_shares()));
    let apply = rig().amishare(
        dir.path(),
        &["apply", "--auto-approve", spec.to_str().unwrap()],
    );
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    let target = aws_sdk_ec2::Client::new(&rig().config(&world.target).await);
    let seen = target
        .describe_images()
        .image_ids(&world.image_id)
        .send()
        .await
        .expect("DescribeImages as target");
    assert_eq!(seen.images().len(), 1);
}

#[tokio::test]
async fn prune_removes_undeclared_account() {
    let world = seed(4, false).await;
    let stray = account(904);
    world.add_launch(&stray).await;
    let (dir, spec) = spec_dir(&world.spec(true, "      - {account: prod}"));
    let apply = rig().amishare(
        dir.path(),
        &["apply", "--auto-approve", spec.to_str().unwrap()],
    );
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    assert!(
        String::from_utf8_lossy(&apply.stdout)
            .contains(&format!("- launch permission: account {stray}")),
        "{}",
        out(&apply)
    );
    assert_eq!(world.launch().await, BTreeSet::from([world.target.clone()]));
}

#[tokio::test]
async fn without_prune_undeclared_account_is_kept() {
    let world = seed(5, false).await;
    let stray = account(905);
    world.add_launch(&stray).await;
    let (dir, spec) = spec_dir(&world.spec(false, "      - {account: prod}"));
    let spec = spec.to_str().unwrap();
    let apply = rig().amishare(dir.path(), &["apply", "--auto-approve", spec]);
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    assert_eq!(
        world.launch().await,
        BTreeSet::from([world.target.clone(), stray.clone()])
    );
    let plan = rig().amishare(dir.path(), &["plan", spec, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", out(&plan));
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains(&format!(
            "account {stray} is not declared; kept because pruning is off"
        )),
        "{}",
        out(&plan)
    );
}

#[tokio::test]
async fn aws_managed_image_is_blocked_and_untouched() {
    // EC2 rejects launch permissions on an image under an AWS managed key, so there is
    // nothing to seed: the check is that apply never tries to add one.
    let world = seed(6, true).await;
    let (dir, spec) = spec_dir(&world.spec(true, "      - {account: prod}"));
    let spec = spec.to_str().unwrap();
    let plan = rig().amishare(dir.path(), &["plan", spec]);
    assert_eq!(plan.status.code(), Some(1), "{}", out(&plan));
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(text.contains("[aws-managed-key]"), "{}", out(&plan));
    assert!(
        String::from_utf8_lossy(&plan.stderr).contains("blocked"),
        "{}",
        out(&plan)
    );

    let apply = rig().amishare(
        dir.path(),
        &["apply", "--auto-approve", spec, "--allow-blocked"],
    );
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    assert!(world.launch().await.is_empty());
    let calls = rig().calls(&world.source);
    assert!(
        !calls.iter().any(|c| c == "ModifyImageAttribute"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn deregistered_image_is_blocked_and_the_other_is_shared() {
    let world = seed(7, false).await;
    let gone = world.another_image("golden-7-old").await;
    world
        .ec2
        .deregister_image()
        .image_id(&gone)
        .send()
        .await
        .expect("DeregisterImage");
    let spec = world
        .spec(false, "      - {account: prod}")
        .replace(&world.image_id, &format!("{}, {gone}", world.image_id));
    let (dir, spec) = spec_dir(&spec);
    let plan = rig().amishare(
        dir.path(),
        &["plan", spec.to_str().unwrap(), "--detailed-exitcode"],
    );
    assert_eq!(plan.status.code(), Some(1), "{}", out(&plan));
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(
        stdout.contains(&gone) && stdout.contains(&world.source) && stdout.contains(REGION),
        "{}",
        out(&plan)
    );
    assert!(stdout.contains("deregistered"), "{}", out(&plan));

    let apply = rig().amishare(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            spec.to_str().unwrap(),
            "--allow-blocked",
        ],
    );
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    let launch = world.launch().await;
    assert_eq!(launch, BTreeSet::from([world.target.clone()]));
}

#[tokio::test]
async fn ambient_credentials_in_wrong_account_are_rejected() {
    let world = seed(8, false).await;
    let text = world.spec(false, "      - {account: prod}").replace(
        &format!(
            ", role_arn: \"arn:aws:iam::{}:role/amishare\"",
            world.source
        ),
        "",
    );
    let (dir, spec) = spec_dir(&text);
    let plan = rig().amishare(dir.path(), &["plan", spec.to_str().unwrap()]);
    assert_eq!(plan.status.code(), Some(1), "{}", out(&plan));
    assert!(
        String::from_utf8_lossy(&plan.stderr).contains("declares no `role_arn`"),
        "{}",
        out(&plan)
    );
}

#[tokio::test]
async fn policy_returned_reordered_gives_empty_plan() {
    let world = seed(9, false).await;
    let (dir, spec) = spec_dir(&world.spec(
        false,
        "      - {account: prod}\n      - {account: \"100000000777\"}",
    ));
    let spec = spec.to_str().unwrap();
    let apply = rig().amishare(dir.path(), &["apply", "--auto-approve", spec]);
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));

    // The same policy as KMS may return it: statements and lists reordered, bare
    // account ids, single strings in place of one-element lists.
    let mut policy = world.policy().await;
    let list = policy["Statement"].as_array_mut().unwrap();
    list.reverse();
    for statement in list.iter_mut() {
        if statement["Sid"] == "amishare-accounts" {
            statement["Principal"]["AWS"] = serde_json::json!(["100000000777", world.target]);
            statement["Action"].as_array_mut().unwrap().reverse();
            statement["Resource"] = serde_json::json!(["*"]);
        }
    }
    let text = policy.to_string();
    world
        .kms
        .put_key_policy()
        .key_id(&world.key_id)
        .policy_name("default")
        .policy(text)
        .send()
        .await
        .expect("PutKeyPolicy");

    let plan = rig().amishare(dir.path(), &["plan", spec, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", out(&plan));
}

#[tokio::test]
async fn images_on_several_pages_are_all_shared() {
    // The rig pages DescribeImages and DescribeSnapshots at two items.
    let mut world = seed(10, false).await;
    let second = world.another_image("golden-10-b").await;
    let third = world.another_image("golden-10-c").await;
    let first = world.image_id.clone();
    let text = world
        .spec(false, "      - {account: prod, copy: true}")
        .replace(
            &format!("ids: [{first}]"),
            &format!("ids: [{first}, {second}, {third}]"),
        );
    let (dir, spec) = spec_dir(&text);
    let apply = rig().amishare(
        dir.path(),
        &["apply", "--auto-approve", spec.to_str().unwrap()],
    );
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    for id in [first, second, third] {
        world.image_id = id.clone();
        assert_eq!(
            world.launch().await,
            BTreeSet::from([world.target.clone()]),
            "{id}"
        );
    }
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn detailed_exitcode_is_two_then_zero() {
    let world = seed(20, false).await;
    let (dir, spec) = spec_dir(&world.spec(false, &world.default_shares()));
    let spec = spec.to_str().unwrap();
    let detailed = |format: &str| {
        rig().amishare(
            dir.path(),
            &["plan", spec, "--detailed-exitcode", "--format", format],
        )
    };

    let markdown = detailed("markdown");
    assert_eq!(markdown.status.code(), Some(2), "{}", out(&markdown));
    assert!(
        stdout(&markdown).starts_with("**Plan: "),
        "{}",
        out(&markdown)
    );
    let json = detailed("json");
    assert_eq!(json.status.code(), Some(2), "{}", out(&json));
    let document: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("JSON plan");
    assert_eq!(document["format_version"], 1);
    assert_eq!(document["summary"]["changes"], 3, "{document:#}");

    let apply = rig().amishare(dir.path(), &["apply", "--auto-approve", spec]);
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    let converged = detailed("text");
    assert_eq!(converged.status.code(), Some(0), "{}", out(&converged));
}

#[tokio::test]
async fn plan_with_only_warnings_exits_zero() {
    let world = seed(21, false).await;
    let (dir, spec) = spec_dir(&world.spec(false, "      - {account: prod}"));
    let spec = spec.to_str().unwrap();
    let apply = rig().amishare(dir.path(), &["apply", "--auto-approve", spec]);
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    world.add_launch(&account(921)).await;

    let plan = rig().amishare(
        dir.path(),
        &["plan", spec, "--detailed-exitcode", "--format", "json"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", out(&plan));
    let document: serde_json::Value = serde_json::from_str(&stdout(&plan)).expect("JSON plan");
    assert_eq!(document["summary"]["changes"], 0, "{document:#}");
    assert_eq!(document["summary"]["warnings"], 1, "{document:#}");
    assert_eq!(
        document["findings"][0]["code"], "undeclared-launch-permission",
        "{document:#}"
    );
}

#[tokio::test]
async fn blocked_plan_exits_one_unless_allowed() {
    let world = seed(22, true).await;
    let (dir, spec) = spec_dir(&world.spec(true, "      - {account: prod}"));
    let spec = spec.to_str().unwrap();
    let blocked = rig().amishare(dir.path(), &["plan", spec, "--detailed-exitcode"]);
    assert_eq!(blocked.status.code(), Some(1), "{}", out(&blocked));
    assert!(
        String::from_utf8_lossy(&blocked.stderr).contains("--allow-blocked"),
        "{}",
        out(&blocked)
    );

    // The key grant the spec declares is still made, so changes are pending.
    let allowed = rig().amishare(
        dir.path(),
        &["plan", spec, "--detailed-exitcode", "--allow-blocked"],
    );
    assert_eq!(allowed.status.code(), Some(2), "{}", out(&allowed));
}

#[tokio::test]
async fn saved_plan_applies_without_the_spec() {
    let world = seed(23, false).await;
    let (dir, spec) = spec_dir(&world.spec(false, &world.default_shares()));
    let plan = rig().amishare(
        dir.path(),
        &["plan", spec.to_str().unwrap(), "--out", "plan.json"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", out(&plan));
    assert!(
        String::from_utf8_lossy(&plan.stderr).contains("amishare apply plan.json"),
        "{}",
        out(&plan)
    );
    std::fs::remove_file(&spec).expect("remove the spec");

    let apply = rig().amishare(dir.path(), &["apply", "plan.json"]);
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    assert!(stdout(&apply).contains("Converged"), "{}", out(&apply));
    assert_eq!(
        world.launch().await,
        BTreeSet::from([world.target.clone(), ORG.to_owned()])
    );
    assert_eq!(
        world.volume_users().await,
        BTreeSet::from([world.target.clone()])
    );
}

#[tokio::test]
async fn saved_plan_is_refused_after_drift() {
    let world = seed(24, false).await;
    let (dir, spec) = spec_dir(&world.spec(false, &world.default_shares()));
    let plan = rig().amishare(
        dir.path(),
        &["plan", spec.to_str().unwrap(), "--out", "plan.json"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", out(&plan));
    world.add_launch(&account(924)).await;
    let before = world.mutating_calls();

    let apply = rig().amishare(dir.path(), &["apply", "plan.json"]);
    assert_eq!(apply.status.code(), Some(1), "{}", out(&apply));
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(
        stderr.contains(&format!(
            "error: image `{}` in account {} in {REGION} changed since the plan was saved",
            world.image_id, world.source
        )),
        "{}",
        out(&apply)
    );
    assert!(stderr.contains("nothing was changed"), "{}", out(&apply));
    assert_eq!(
        world.mutating_calls(),
        before,
        "{:?}",
        rig().calls(&world.source)
    );
}

#[tokio::test]
async fn deprecated_image_is_blocked_and_left_alone() {
    let world = seed(27, false).await;
    let past = aws_sdk_ec2::primitives::DateTime::from_secs(1_577_836_800);
    world
        .ec2
        .enable_image_deprecation()
        .image_id(&world.image_id)
        .deprecate_at(past)
        .send()
        .await
        .expect("EnableImageDeprecation");
    let (dir, spec) = spec_dir(&world.spec(false, "      - {account: prod}"));
    plan_blocked(dir.path(), &spec, &["image-deprecated", "2020-01-01"]);
    let apply = rig().amishare(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--allow-blocked",
            spec.to_str().unwrap(),
        ],
    );
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    assert!(world.launch().await.is_empty());
}

#[tokio::test]
async fn trace_logs_hold_no_secret() {
    let world = seed(11, false).await;
    let role = format!("role_arn: \"arn:aws:iam::{}:role/amishare\"", world.source);
    let text = world
        .spec(false, "      - {account: prod}")
        .replace(&role, &format!("{role}, external_id: \"ext-secret-8731\""));
    let (dir, spec) = spec_dir(&text);
    let spec = spec.to_str().unwrap();
    // Plain trace, and directives naming the modules that log credentials and signing:
    // a directive more specific than a cap must not lift it.
    for (n, log) in [
        "trace",
        "trace,aws_sigv4::http_request=trace",
        "aws_smithy_runtime::client::orchestrator=trace,aws_config::sts=trace",
    ]
    .into_iter()
    .enumerate()
    {
        let secrets = [
            ("AWS_ACCESS_KEY_ID", "AKIAAMISHARETEST0001"),
            ("AWS_SECRET_ACCESS_KEY", "amishare-secret-value-4242"),
            ("RUST_LOG", log),
        ];
        let args: &[&str] = if n == 0 {
            &["apply", spec, "--auto-approve"]
        } else {
            &["plan", spec]
        };
        let run = rig().amishare_with(dir.path(), args, &secrets);
        assert_eq!(run.status.code(), Some(0), "{log}: {}", out(&run));
        let output = out(&run);
        if n < 2 {
            // amishare's own debug events show that the filter lets trace through.
            assert!(output.contains("described images"), "{log}: {output}");
        }
        for secret in [
            "AKIAAMISHARETEST0001",
            "amishare-secret-value-4242",
            "ext-secret-8731",
            "Signature=",
            "canonical_request",
            "ASIA",
        ] {
            assert!(
                !output.contains(secret),
                "{log}: `{secret}` is in the output"
            );
        }
    }
}
