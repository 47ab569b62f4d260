//! Prints what a plan costs in AWS calls and time, for growing numbers of images and
//! targets, against the in-memory AWS with a fixed latency per call.
//!
//! Run with `cargo bench --bench plan`. The latency models a remote API; the figures
//! show that calls grow with images and snapshots, never with images times targets, and
//! how much concurrency hides latency.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use amishare::aws::memory::MemoryCloud;
use amishare::model::{KeyManager, Scope, Snapshot};
use amishare::observe::{MAX_CALLS_IN_FLIGHT, observe};
use amishare::plan::plan;
use amishare::spec;

const LATENCY: Duration = Duration::from_millis(20);
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"}]}"#;

fn spec_text(images: usize, targets: usize) -> String {
    let mut text = String::from(
        "version: 1\naccounts:\n  - {name: factory, id: \"111111111111\"}\nkeys:\n  - {name: golden, account: factory, region: us-east-1, key: alias/golden}\nimages:\n  - account: factory\n    region: us-east-1\n    key: golden\n    ids:\n",
    );
    for i in 0..images {
        let _ = writeln!(text, "      - ami-{i:017x}");
    }
    text.push_str("    share_with:\n");
    for t in 0..targets {
        // One target in ten may also copy the images.
        let _ = writeln!(
            text,
            "      - {{account: \"{:012}\", copy: {}}}",
            500_000_000_000u64 + t as u64,
            t % 10 == 0
        );
    }
    text
}

fn world(images: usize) -> MemoryCloud {
    let scope = Scope::new("111111111111", "us-east-1");
    let cloud = MemoryCloud::new().with_latency(LATENCY);
    let arn = cloud.add_key(
        &scope,
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        Some("alias/golden"),
        KeyManager::Customer,
        POLICY,
    );
    for i in 0..images {
        let snapshots: Vec<Snapshot> = (0..2)
            .map(|s| Snapshot {
                id: format!("snap-{i:015x}{s:02x}"),
                encrypted: true,
                kms_key_id: Some(arn.clone()),
            })
            .collect();
        cloud.add_image(&scope, &format!("ami-{i:017x}"), &snapshots);
    }
    cloud
}

fn main() {
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        eprintln!("cannot start the tokio runtime");
        return;
    };
    println!(
        "latency per call: {} ms, calls in flight at most: {MAX_CALLS_IN_FLIGHT}",
        LATENCY.as_millis()
    );
    println!(
        "{:>7} {:>8} {:>14} {:>6} {:>14} {:>15} {:>11} {:>15}",
        "images",
        "targets",
        "image x target",
        "calls",
        "image attrs",
        "snapshot attrs",
        "wall ms",
        "one-at-a-time ms"
    );
    for (images, targets) in [(10, 10), (100, 100), (500, 200)] {
        let cloud = world(images);
        let Ok(spec) = spec::load_str(Path::new("bench.yaml"), &spec_text(images, targets)) else {
            eprintln!("bench spec is invalid");
            return;
        };
        let start = Instant::now();
        let planned = runtime.block_on(async {
            let observed = observe(&cloud, &spec).await.ok()?;
            Some(plan(&spec, &observed))
        });
        let elapsed = start.elapsed();
        let Some(planned) = planned else {
            eprintln!("observe failed");
            return;
        };
        assert!(!planned.changes.is_empty());
        let mut by_operation: BTreeMap<&str, usize> = BTreeMap::new();
        for call in cloud.calls() {
            *by_operation.entry(call).or_default() += 1;
        }
        let calls = cloud.calls().len();
        println!(
            "{images:>7} {targets:>8} {:>14} {calls:>6} {:>14} {:>15} {:>11} {:>15}",
            images * targets,
            by_operation
                .get("DescribeImageAttribute")
                .copied()
                .unwrap_or(0),
            by_operation
                .get("DescribeSnapshotAttribute")
                .copied()
                .unwrap_or(0),
            elapsed.as_millis(),
            calls as u128 * LATENCY.as_millis(),
        );
    }
}
