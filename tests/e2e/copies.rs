//! Copies end to end: re-encrypted copies, copies under the target's key, replicas and
//! copies a target keeps, made through the emulator's CopyImage.

use aws_sdk_ec2::types::Filter;

use super::{World, out, seed};
use crate::rig::{REGION, rig, spec_dir};

const WEST: &str = "us-west-2";

impl World {
    /// A spec for this world's image with `extra` lines in its image entry.
    fn copy_spec(&self, extra: &str, shares: &str, keys: &str) -> String {
        let (source, target, image) = (&self.source, &self.target, &self.image_id);
        format!(
            "version: 1\naccounts:\n  - {{name: factory, id: \"{source}\", role_arn: \"arn:aws:iam::{source}:role/amishare\"}}\n  - {{name: prod, id: \"{target}\", role_arn: \"arn:aws:iam::{target}:role/amishare\"}}\nkeys:\n  - {{name: golden, account: factory, region: {REGION}, key: alias/golden}}\n{keys}images:\n  - account: factory\n    region: {REGION}\n    ids: [{image}]\n    key: golden\n{extra}    share_with:\n{shares}\n"
        )
    }
}

/// Copies of `image` that `account` owns in `region`, found by amishare's tag.
async fn copies_in(
    account: &str,
    region: &str,
    source: &str,
    image: &str,
) -> Vec<aws_sdk_ec2::types::Image> {
    let config = rig()
        .config(account)
        .await
        .to_builder()
        .region(aws_config::Region::new(region.to_owned()))
        .build();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let filter = Filter::builder()
        .name("tag:amishare:copy-of")
        .values(format!("{source}/{REGION}/{image}"))
        .build();
    let output = ec2
        .describe_images()
        .owners("self")
        .filters(filter)
        .send()
        .await
        .expect("DescribeImages");
    output.images().to_vec()
}

/// Creates a customer managed key in `account` and `region` and returns its ARN.
async fn key_in(account: &str, region: &str) -> String {
    let config = rig()
        .config(account)
        .await
        .to_builder()
        .region(aws_config::Region::new(region.to_owned()))
        .build();
    let kms = aws_sdk_kms::Client::new(&config);
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"root","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    );
    let key = kms
        .create_key()
        .policy(policy)
        .send()
        .await
        .expect("CreateKey");
    let arn = key
        .key_metadata()
        .and_then(|m| m.arn())
        .expect("key ARN")
        .to_owned();
    kms.create_alias()
        .alias_name("alias/golden")
        .target_key_id(&arn)
        .send()
        .await
        .expect("CreateAlias");
    arn
}

async fn snapshot_key(
    account: &str,
    region: &str,
    image: &aws_sdk_ec2::types::Image,
) -> Option<String> {
    let config = rig()
        .config(account)
        .await
        .to_builder()
        .region(aws_config::Region::new(region.to_owned()))
        .build();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let id = image
        .block_device_mappings()
        .first()?
        .ebs()?
        .snapshot_id()?
        .to_owned();
    let output = ec2
        .describe_snapshots()
        .snapshot_ids(id)
        .send()
        .await
        .ok()?;
    output.snapshots().first()?.kms_key_id().map(str::to_owned)
}

#[tokio::test]
async fn aws_managed_image_is_shared_through_a_copy() {
    let world = seed(30, true).await;
    let (dir, spec) = spec_dir(&world.copy_spec(
        "    reencrypt: true\n",
        "      - {account: prod, copy: true}",
        "",
    ));
    let spec = spec.to_str().unwrap();

    let plan = rig().amishare(dir.path(), &["plan", spec, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", out(&plan));
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains(&format!(
            "+ copy {} of account {}",
            world.image_id, world.source
        )),
        "{}",
        out(&plan)
    );
    assert!(text.contains("~ key policy of `golden`"), "{}", out(&plan));

    let apply = rig().amishare(dir.path(), &["apply", spec, "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    let copies = copies_in(&world.source, REGION, &world.source, &world.image_id).await;
    assert_eq!(copies.len(), 1);
    let copy_id = copies[0].image_id().unwrap().to_owned();
    assert!(
        snapshot_key(&world.source, REGION, &copies[0])
            .await
            .unwrap()
            .contains(&world.key_id)
    );

    // The target can describe the copy and copies it under its own key.
    let target_key = key_in(&world.target, REGION).await;
    let target = aws_sdk_ec2::Client::new(&rig().config(&world.target).await);
    let seen = target
        .describe_images()
        .image_ids(&copy_id)
        .send()
        .await
        .expect("DescribeImages as target");
    assert_eq!(seen.images().len(), 1);
    target
        .copy_image()
        .source_region(REGION)
        .source_image_id(&copy_id)
        .name("prod-own")
        .encrypted(true)
        .kms_key_id(&target_key)
        .send()
        .await
        .expect("the target can copy the shared copy");

    let again = rig().amishare(dir.path(), &["plan", spec, "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", out(&again));
}

#[tokio::test]
async fn copy_under_target_key_is_made_by_source() {
    let world = seed(31, true).await;
    let target_key = key_in(&world.target, REGION).await;
    let shares = format!("      - {{account: prod, copy_under: \"{target_key}\"}}");
    let (dir, spec) = spec_dir(&world.copy_spec("", &shares, ""));
    let apply = rig().amishare(
        dir.path(),
        &["apply", spec.to_str().unwrap(), "--auto-approve"],
    );
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    let copies = copies_in(&world.source, REGION, &world.source, &world.image_id).await;
    assert_eq!(copies.len(), 1);
    assert_eq!(
        snapshot_key(&world.source, REGION, &copies[0]).await,
        Some(target_key)
    );
    let target = aws_sdk_ec2::Client::new(&rig().config(&world.target).await);
    let seen = target
        .describe_images()
        .image_ids(copies[0].image_id().unwrap())
        .send()
        .await
        .expect("DescribeImages as target");
    assert_eq!(seen.images().len(), 1);
}

#[tokio::test]
async fn replica_is_made_once() {
    let world = seed(32, false).await;
    key_in(&world.source, WEST).await;
    let keys =
        format!("  - {{name: golden-west, account: factory, region: {WEST}, key: alias/golden}}\n");
    let extra = format!("    replicas: [{{region: {WEST}, key: golden-west}}]\n");
    let (dir, spec) = spec_dir(&world.copy_spec(&extra, "      - {account: prod}", &keys));
    let spec = spec.to_str().unwrap();
    for _ in 0..2 {
        let apply = rig().amishare(dir.path(), &["apply", spec, "--auto-approve"]);
        assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    }
    let replicas = copies_in(&world.source, WEST, &world.source, &world.image_id).await;
    assert_eq!(replicas.len(), 1, "one replica after two applies");
    let calls = rig().calls(&world.source);
    assert_eq!(
        calls.iter().filter(|c| *c == "CopyImage").count(),
        1,
        "{calls:?}"
    );
    let target = aws_sdk_ec2::Client::new(
        &rig()
            .config(&world.target)
            .await
            .to_builder()
            .region(aws_config::Region::new(WEST))
            .build(),
    );
    let seen = target
        .describe_images()
        .image_ids(replicas[0].image_id().unwrap())
        .send()
        .await
        .expect("DescribeImages as target");
    assert_eq!(seen.images().len(), 1);
}

#[tokio::test]
async fn target_keeps_its_own_copy() {
    let world = seed(33, false).await;
    let target_key = key_in(&world.target, REGION).await;
    let shares = format!("      - {{account: prod, keep_copy_under: \"{target_key}\"}}");
    let (dir, spec) = spec_dir(&world.copy_spec("", &shares, ""));
    let apply = rig().amishare(
        dir.path(),
        &["apply", spec.to_str().unwrap(), "--auto-approve"],
    );
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));
    let kept = copies_in(&world.target, REGION, &world.source, &world.image_id).await;
    assert_eq!(kept.len(), 1, "the target's own copy");
    assert_eq!(
        snapshot_key(&world.target, REGION, &kept[0]).await,
        Some(target_key)
    );
    let calls = rig().calls(&world.target);
    assert!(
        calls.iter().any(|c| c == "CopyImage"),
        "the target made the copy: {calls:?}"
    );
}

#[tokio::test]
async fn failed_copy_is_reported_with_its_fix() {
    let world = seed(34, true).await;
    // A key ARN in the target account that does not exist: the copy ends `failed`.
    let missing = format!(
        "arn:aws:kms:{REGION}:{}:key/00000000-0000-0000-0000-000000000000",
        world.target
    );
    let shares = format!("      - {{account: prod, copy_under: \"{missing}\"}}");
    let (dir, spec) = spec_dir(&world.copy_spec("", &shares, ""));
    let apply = rig().amishare(
        dir.path(),
        &["apply", spec.to_str().unwrap(), "--auto-approve"],
    );
    assert_eq!(apply.status.code(), Some(1), "{}", out(&apply));
    let stdout = String::from_utf8_lossy(&apply.stdout);
    assert!(stdout.contains("Not converged"), "{}", out(&apply));
    assert!(stdout.contains("[copy-failed]"), "{}", out(&apply));
    assert!(
        stdout.contains("hint: deregister the failed image"),
        "{}",
        out(&apply)
    );
}
