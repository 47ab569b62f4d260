//! The text renderer over plans that hold every change kind and finding severity.

use std::path::Path;

use amishare::aws::memory::MemoryCloud;
use amishare::model::{KeyManager, LaunchEntry, Scope, Snapshot};
use amishare::observe::observe;
use amishare::plan::plan;
use amishare::render::render_text;
use amishare::spec;

const POLICY: &str = r#"{"Version":"2012-10-17","Id":"key-default-1","Statement":[
 {"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"},
 {"Sid":"amishare-accounts","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::444444444444:root","AROAEXAMPLEID12345678"]},
  "Action":["kms:CreateGrant","kms:Decrypt","kms:DescribeKey","kms:GenerateDataKeyWithoutPlaintext","kms:ReEncrypt*"],"Resource":"*"}]}"#;

const SPEC: &str = r#"
version: 1
settings: {prune: true}
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
"#;

fn strip(text: &str) -> String {
    anstream::adapter::strip_str(text).to_string()
}

#[tokio::test]
async fn text_plan_with_every_change_kind() {
    let scope = Scope::new("111111111111", "us-east-1");
    let cloud = MemoryCloud::new();
    let key = cloud.add_key(
        &scope,
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        Some("alias/golden"),
        KeyManager::Customer,
        POLICY,
    );
    let managed = cloud.add_key(
        &scope,
        "99999999-12ab-34cd-56ef-1234567890ab",
        Some("alias/aws/ebs"),
        KeyManager::Aws,
        "{}",
    );
    cloud.add_image(
        &scope,
        "ami-0123456789abcdef0",
        &[Snapshot {
            id: "snap-0123456789abcdef0".into(),
            encrypted: true,
            kms_key_id: Some(key),
        }],
    );
    cloud.add_image(
        &scope,
        "ami-0123456789abcdef1",
        &[Snapshot {
            id: "snap-0123456789abcdef1".into(),
            encrypted: true,
            kms_key_id: Some(managed),
        }],
    );
    cloud.set_launch_permissions(
        &scope,
        "ami-0123456789abcdef0",
        &[LaunchEntry::Account("333333333333".into())],
    );
    cloud.set_volume_permissions(&scope, "snap-0123456789abcdef0", &["333333333333"]);

    let spec = spec::load_str(Path::new("render.yaml"), SPEC).unwrap();
    let planned = plan(&spec, &observe(&cloud, &spec).await.unwrap());
    insta::assert_snapshot!(strip(&render_text(&planned, &spec)));
}

#[tokio::test]
async fn text_plan_without_changes() {
    let spec = spec::load_str(Path::new("empty.yaml"), "version: 1\n").unwrap();
    let planned = plan(&spec, &observe(&MemoryCloud::new(), &spec).await.unwrap());
    assert_eq!(
        strip(&render_text(&planned, &spec)),
        "No changes: the live state matches the spec.\n"
    );
}

#[tokio::test]
async fn colour_codes_only_style_the_text() {
    let spec = spec::load_str(Path::new("empty.yaml"), "version: 1\n").unwrap();
    let planned = plan(&spec, &observe(&MemoryCloud::new(), &spec).await.unwrap());
    let styled = render_text(&planned, &spec);
    assert!(styled.contains('\u{1b}'), "the renderer styles its output");
    assert_ne!(styled, strip(&styled));
}
