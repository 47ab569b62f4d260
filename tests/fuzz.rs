//! Generated inputs for the spec loader and the key policy parser: they return an error
//! or a value, and never panic or hang. The seed is fixed so CI runs the same cases.

use std::path::Path;

use amishare::policy::Policy;
use amishare::spec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    Config {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x616d_6973),
        failure_persistence: None,
        ..Config::default()
    }
}

const EXAMPLE: &str = include_str!("../specs/example.yaml");

/// JSON values up to a few levels deep, with the keys key policies use.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let key = prop_oneof![
        Just("Sid".to_owned()),
        Just("Effect".to_owned()),
        Just("Principal".to_owned()),
        Just("NotPrincipal".to_owned()),
        Just("AWS".to_owned()),
        Just("Action".to_owned()),
        Just("Resource".to_owned()),
        Just("Condition".to_owned()),
        Just("Statement".to_owned()),
        "[a-zA-Z:-]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        prop_oneof![
            Just("amishare-accounts".to_owned()),
            Just("*".to_owned()),
            Just("222222222222".to_owned()),
            Just("AROAEXAMPLEID12345678".to_owned()),
            "[ -~]{0,20}"
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn spec_loader_never_panics_on_text(text in "[ -~\n\t]{0,400}") {
        let _ = spec::load_str(Path::new("fuzz.yaml"), &text);
    }

    #[test]
    fn spec_loader_never_panics_on_edited_example(at in 0..EXAMPLE.len(), cut in 0usize..40, insert in "[ -~\n]{0,8}") {
        let start = (0..=at).rev().find(|i| EXAMPLE.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + cut).min(EXAMPLE.len());
        let end = (end..=EXAMPLE.len()).find(|i| EXAMPLE.is_char_boundary(*i)).unwrap_or(EXAMPLE.len());
        let text = format!("{}{insert}{}", &EXAMPLE[..start], &EXAMPLE[end..]);
        let _ = spec::load_str(Path::new("fuzz.yaml"), &text);
    }

    #[test]
    fn policy_parser_never_panics(text in "[ -~]{0,200}") {
        let _ = Policy::parse(&text);
    }

    #[test]
    fn policy_operations_never_panic(statements in prop::collection::vec(json(), 0..6)) {
        let text = serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        if let Ok(policy) = Policy::parse(&text) {
            let state = policy.managed_state("aws");
            let rewritten = policy.with_managed(&state.members, &state.unknown);
            let _ = rewritten.to_document();
            prop_assert!(policy.same_meaning(&policy));
        }
    }

    #[test]
    fn reversed_statements_mean_the_same(statements in prop::collection::vec(json(), 0..6)) {
        let forward = serde_json::json!({"Statement": statements}).to_string();
        let mut reversed_list = statements.clone();
        reversed_list.reverse();
        let reversed = serde_json::json!({"Statement": reversed_list}).to_string();
        if let (Ok(a), Ok(b)) = (Policy::parse(&forward), Policy::parse(&reversed)) {
            prop_assert!(a.same_meaning(&b));
        }
    }
}

#[test]
fn alias_expansion_is_bounded() {
    // Nine levels of nine aliases each expand to 9^9 (about 387 million) nodes.
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for level in 1..9 {
        let previous = level - 1;
        let refs = vec![format!("*a{previous}"); 9].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
    }
    text.push_str("version: *a8\n");
    let Err(problems) = spec::load_str(Path::new("laughs.yaml"), &text) else {
        panic!("an alias bomb was accepted");
    };
    assert_eq!(problems.0.len(), 1, "{problems:?}");
    assert_eq!(problems.0[0].code, "alias-expansion-too-large");
}
