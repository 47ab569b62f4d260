//! Key policy guards end to end: the lockout check amishare never bypasses, rewrites that
//! would lock out the account root, and policies in shapes KMS accepts but moto did not.

use super::{World, out, plan_blocked, seed};
use crate::rig::{rig, spec_dir};

impl World {
    async fn put_policy(&self, policy: &str) {
        self.kms
            .put_key_policy()
            .key_id(&self.key_id)
            .policy_name("default")
            .policy(policy)
            .send()
            .await
            .expect("PutKeyPolicy");
    }

    fn apply(&self, spec: &str) -> std::process::Output {
        let (dir, path) = spec_dir(spec);
        rig().amishare(
            dir.path(),
            &[
                "apply",
                "--auto-approve",
                path.to_str().expect("UTF-8 path"),
            ],
        )
    }
}

#[tokio::test]
async fn key_writes_never_bypass_the_lockout_check() {
    let world = seed(12, false).await;
    let grant = world.apply(&world.spec(true, "      - {account: prod}"));
    assert_eq!(grant.status.code(), Some(0), "{}", out(&grant));
    // No target left: the revoke removes the managed statement.
    let revoke = world.apply(&world.spec(true, "      []"));
    assert_eq!(revoke.status.code(), Some(0), "{}", out(&revoke));

    let writes = rig().call_records(&world.source, Some("PutKeyPolicy"));
    assert_eq!(writes.len(), 2, "one grant and one revoke: {writes:#?}");
    for write in &writes {
        assert_eq!(write["bypass_lockout_check"], false, "{write}");
    }
}

#[tokio::test]
async fn pruning_the_only_admin_statement_is_blocked() {
    let world = seed(13, false).await;
    let source = &world.source;
    world
        .put_policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"amishare-legacy","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{source}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
        ))
        .await;
    let before = world.policy().await;
    let (dir, path) = spec_dir(&world.spec(true, "      - {account: prod}"));
    plan_blocked(dir.path(), &path, &["key-lockout", "amishare-legacy"]);

    let apply = rig().amishare(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            path.to_str().expect("UTF-8 path"),
        ],
    );
    assert_eq!(apply.status.code(), Some(1), "{}", out(&apply));
    assert_eq!(world.policy().await, before);
    assert!(world.launch().await.is_empty());
}

#[tokio::test]
async fn single_statement_policy_is_kept_and_extended() {
    let world = seed(14, false).await;
    let source = &world.source;
    let admin = format!(
        r#"{{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{source}:root"}},"Action":"kms:*","Resource":"*"}}"#
    );
    // KMS accepts `Statement` as one object; moto 5.2.5 failed DescribeKey on it.
    world
        .put_policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":{admin}}}"#
        ))
        .await;
    let spec = world.spec(false, "      - {account: prod}");
    let apply = world.apply(&spec);
    assert_eq!(apply.status.code(), Some(0), "{}", out(&apply));

    let policy = world.policy().await;
    let statements = policy["Statement"].as_array().expect("a list now");
    let admin: serde_json::Value = serde_json::from_str(&admin).expect("statement is JSON");
    assert!(statements.contains(&admin), "{policy:#}");
    assert!(
        statements.iter().any(|s| s["Sid"] == "amishare-accounts"),
        "{policy:#}"
    );
    let (dir, path) = spec_dir(&spec);
    let again = rig().amishare(
        dir.path(),
        &["plan", path.to_str().unwrap(), "--detailed-exitcode"],
    );
    assert_eq!(again.status.code(), Some(0), "{}", out(&again));
}
