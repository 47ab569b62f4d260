//! Image selectors end to end: name patterns, tags and newest-N resolved by DescribeImages
//! filters on the emulator.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::Tag;

use super::{out, seed};
use crate::rig::{rig, spec_dir};

#[tokio::test]
async fn selectors_resolve_on_seeded_images() {
    let world = seed(40, false).await;
    let tag = |id: &str, team: &str| {
        let ec2 = world.ec2.clone();
        let (id, team) = (id.to_owned(), team.to_owned());
        async move {
            ec2.create_tags()
                .resources(id)
                .tags(Tag::builder().key("team").value(team).build())
                .send()
                .await
                .expect("CreateTags")
        }
    };
    let old = world.another_image("golden-40-a").await;
    tag(&old, "platform").await;
    // EC2 creation dates have a resolution of one second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let new = world.another_image("golden-40-b").await;
    tag(&new, "platform").await;
    let other = world.another_image("golden-40-c").await;
    tag(&other, "data").await;

    let cases = [
        ("{name: \"golden-40-*\"}", vec![&old, &new, &other]),
        (
            "{name: \"golden-40-*\", tags: {team: platform}}",
            vec![&old, &new],
        ),
        (
            "{name: \"golden-40-*\", tags: {team: platform}, newest: 1}",
            vec![&new],
        ),
    ];
    for (select, expected) in cases {
        let text = world.spec(false, "      - {account: prod}").replace(
            &format!("ids: [{}]", world.image_id),
            &format!("select: {select}"),
        );
        let (dir, spec) = spec_dir(&text);
        let plan = rig().amishare(
            dir.path(),
            &["plan", spec.to_str().unwrap(), "--detailed-exitcode"],
        );
        assert_eq!(plan.status.code(), Some(2), "{select}: {}", out(&plan));
        let stdout = String::from_utf8_lossy(&plan.stdout);
        let line = stdout
            .lines()
            .find(|l| l.contains("selector matched"))
            .unwrap_or_default();
        let matched: BTreeSet<&str> = line
            .rsplit("selector matched ")
            .next()
            .unwrap_or_default()
            .split(" [")
            .next()
            .unwrap_or_default()
            .split(", ")
            .collect();
        let expected: BTreeSet<&str> = expected.iter().map(|s| s.as_str()).collect();
        assert_eq!(matched, expected, "{select}: {}", out(&plan));
    }
}
