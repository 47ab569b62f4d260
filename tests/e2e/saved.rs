//! Saved plans edited after `plan --out`: `apply FILE` must refuse each edit and change
//! nothing.

use std::path::Path;

use serde_json::{Value, json};

use super::{World, out, seed};
use crate::rig::{rig, spec_dir};

/// Runs `plan --out plan.json` on `spec` in `dir` and returns the saved plan.
fn save_plan(dir: &Path, spec: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "plan",
        spec.to_str().expect("UTF-8 path"),
        "--out",
        "plan.json",
    ];
    args.extend(extra);
    let plan = rig().amishare(dir, &args);
    assert_eq!(plan.status.code(), Some(0), "{}", out(&plan));
    let text = std::fs::read_to_string(dir.join("plan.json")).expect("read plan");
    serde_json::from_str(&text).expect("saved plan is JSON")
}

/// Writes `saved` back as `plan.json`, applies it and checks that apply fails with
/// `expected` on stderr and makes no mutating call.
fn apply_refused(world: &World, dir: &Path, saved: &Value, expected: &str) {
    std::fs::write(dir.join("plan.json"), saved.to_string()).expect("write plan");
    let apply = rig().amishare(dir, &["apply", "plan.json"]);
    assert_eq!(apply.status.code(), Some(1), "{}", out(&apply));
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(stderr.contains(expected), "{}", out(&apply));
    assert_eq!(
        world.mutating_calls(),
        0,
        "{:?}",
        rig().calls(&world.source)
    );
}

/// Appends `entry` to the additions of every launch permission change in `saved`.
fn add_launch_entry(saved: &mut Value, entry: &Value) {
    let changes = saved["plan"]["changes"].as_array_mut().expect("changes");
    let launches: Vec<&mut Value> = changes
        .iter_mut()
        .filter(|c| c["kind"] == "launch_permissions")
        .collect();
    assert!(!launches.is_empty(), "a launch permission change");
    for launch in launches {
        launch["add"]
            .as_array_mut()
            .expect("additions")
            .push(entry.clone());
    }
}

#[tokio::test]
async fn edited_saved_plan_cannot_make_an_image_public() {
    let world = seed(25, false).await;
    let (dir, spec) = spec_dir(&world.spec(false, "      - {account: prod}"));
    let mut saved = save_plan(dir.path(), &spec, &[]);
    add_launch_entry(&mut saved, &json!({"kind": "public"}));
    apply_refused(&world, dir.path(), &saved, "not the ones its specs give");
}

#[tokio::test]
async fn saved_plan_with_edited_specs_is_refused() {
    let world = seed(26, false).await;
    let (dir, spec) = spec_dir(&world.spec(false, "      - {account: prod}"));
    let mut saved = save_plan(dir.path(), &spec, &[]);
    // The saved spec and its changes edited together, so they agree with each other.
    let edited = saved["specs"][0]["text"]
        .as_str()
        .expect("spec text")
        .replace(
            "      - {account: prod}",
            "      - {account: prod}\n      - {account: \"999999999999\"}",
        );
    saved["specs"][0]["text"] = Value::String(edited);
    add_launch_entry(
        &mut saved,
        &json!({"kind": "account", "value": "999999999999"}),
    );
    apply_refused(&world, dir.path(), &saved, "differs from the copy saved");
}

#[tokio::test]
async fn saved_plan_without_its_blockers_is_refused() {
    let world = seed(28, false).await;
    let text = world.spec(false, "      - {account: prod}").replace(
        &world.image_id,
        &format!("{}, ami-0000000000000dead", world.image_id),
    );
    let (dir, spec) = spec_dir(&text);
    let mut saved = save_plan(dir.path(), &spec, &["--allow-blocked"]);
    // Blocked findings are taken from a fresh plan, so deleting them does not help.
    saved["plan"]["findings"] = json!([]);
    apply_refused(&world, dir.path(), &saved, "blocked");
}
