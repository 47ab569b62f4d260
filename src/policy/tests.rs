use super::*;

const ROOT_STATEMENT: &str = r#"{
  "Sid": "Enable IAM User Permissions",
  "Effect": "Allow",
  "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
  "Action": "kms:*",
  "Resource": "*"
}"#;

fn policy(statements: &[&str]) -> Policy {
    let text = format!(
        r#"{{"Version":"2012-10-17","Id":"key-default-1","Statement":[{}]}}"#,
        statements.join(",")
    );
    Policy::parse(&text).unwrap()
}

fn members(sid: &str, values: &[&str]) -> Members {
    Members::from([(
        sid.to_owned(),
        values.iter().map(|v| v.to_string()).collect(),
    )])
}

fn accounts_statement(principals: &str) -> String {
    format!(
        r#"{{"Sid":"amishare-accounts","Effect":"Allow","Principal":{{"AWS":{principals}}},
        "Action":["kms:CreateGrant","kms:Decrypt","kms:DescribeKey","kms:GenerateDataKeyWithoutPlaintext","kms:ReEncrypt*"],
        "Resource":"*"}}"#
    )
}

#[test]
fn reordered_lists_mean_the_same() {
    let a = policy(&[
        ROOT_STATEMENT,
        &accounts_statement(
            r#"["arn:aws:iam::222222222222:root","arn:aws:iam::333333333333:root"]"#,
        ),
    ]);
    let reordered = r#"{"Sid":"amishare-accounts","Effect":"Allow","Resource":"*",
        "Principal":{"AWS":["arn:aws:iam::333333333333:root","arn:aws:iam::222222222222:root"]},
        "Action":["kms:ReEncrypt*","kms:DescribeKey","kms:Decrypt","kms:CreateGrant","kms:GenerateDataKeyWithoutPlaintext"]}"#;
    let b = policy(&[reordered, ROOT_STATEMENT]);
    assert!(a.same_meaning(&b));
}

#[test]
fn bare_account_id_equals_root_arn() {
    let a = policy(&[&accounts_statement(r#""arn:aws:iam::222222222222:root""#)]);
    let b = policy(&[&accounts_statement(r#"["222222222222"]"#)]);
    assert!(a.same_meaning(&b));
}

#[test]
fn single_string_equals_one_element_list() {
    let a = policy(&[
        r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:root"]},"Action":["kms:*"],"Resource":["*"]}"#,
    ]);
    let b = policy(&[
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"kms:*","Resource":"*"}"#,
    ]);
    assert!(a.same_meaning(&b));
}

#[test]
fn star_principal_forms_mean_the_same() {
    let a =
        policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#]);
    let b = policy(&[
        r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*"}"#,
    ]);
    assert!(a.same_meaning(&b));
}

#[test]
fn different_principals_differ() {
    let a = policy(&[&accounts_statement(r#""arn:aws:iam::222222222222:root""#)]);
    let b = policy(&[&accounts_statement(r#""arn:aws:iam::333333333333:root""#)]);
    assert!(!a.same_meaning(&b));
}

#[test]
fn effect_and_condition_differences_count() {
    let allow =
        policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#]);
    let deny =
        policy(&[r#"{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#]);
    assert!(!allow.same_meaning(&deny));
    let with_condition = policy(&[
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*",
        "Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc"}}}"#,
    ]);
    assert!(!allow.same_meaning(&with_condition));
    let key_case = policy(&[
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*",
        "Condition":{"StringEquals":{"AWS:PrincipalOrgId":["o-abc"]}}}"#,
    ]);
    assert!(with_condition.same_meaning(&key_case));
}

#[test]
fn statement_object_is_accepted() {
    let text = format!(r#"{{"Version":"2012-10-17","Statement":{ROOT_STATEMENT}}}"#);
    let parsed = Policy::parse(&text).unwrap();
    assert_eq!(parsed.statements().len(), 1);
}

#[test]
fn invalid_policies_are_errors() {
    assert!(matches!(
        Policy::parse("{not json"),
        Err(PolicyError::Json(_))
    ));
    assert!(matches!(Policy::parse("[]"), Err(PolicyError::NotObject)));
    assert!(matches!(
        Policy::parse(r#"{"Statement":"x"}"#),
        Err(PolicyError::BadStatement)
    ));
}

#[test]
fn with_managed_adds_statement_and_keeps_foreign() {
    let before = policy(&[ROOT_STATEMENT]);
    let target = members(SID_ACCOUNTS, &["arn:aws:iam::222222222222:root"]);
    let after = before.with_managed(&target, &BTreeSet::new());
    assert_eq!(after.statements().len(), 2);
    assert_eq!(after.statements()[0], before.statements()[0]);
    assert_eq!(after.managed_members("aws"), target);
}

#[test]
fn with_managed_replaces_in_place() {
    let foreign_after = r#"{"Sid":"Other","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:role/x"},"Action":"kms:Encrypt","Resource":"*"}"#;
    let before = policy(&[
        ROOT_STATEMENT,
        &accounts_statement(r#""AROAEXAMPLEID12345678""#),
        foreign_after,
    ]);
    let target = members(SID_ACCOUNTS, &["arn:aws:iam::222222222222:root"]);
    let after = before.with_managed(&target, &BTreeSet::new());
    assert_eq!(after.statements().len(), 3);
    assert_eq!(sid_of(&after.statements()[1]), Some(SID_ACCOUNTS));
    assert_eq!(after.statements()[2], before.statements()[2]);
    assert_eq!(after.managed_members("aws"), target);
}

#[test]
fn with_managed_empty_members_remove_statement() {
    let before = policy(&[
        ROOT_STATEMENT,
        &accounts_statement(r#""arn:aws:iam::222222222222:root""#),
    ]);
    let target = Members::from([(SID_ACCOUNTS.to_owned(), BTreeSet::new())]);
    let after = before.with_managed(&target, &BTreeSet::new());
    assert_eq!(after.statements().len(), 1);
}

#[test]
fn with_managed_drops_and_keeps_unknown_sids() {
    let unknown = r#"{"Sid":"amishare-legacy","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#;
    let before = policy(&[ROOT_STATEMENT, unknown]);
    let kept = before.with_managed(&Members::new(), &BTreeSet::new());
    assert!(kept.same_meaning(&before));
    let dropped = before.with_managed(
        &Members::new(),
        &BTreeSet::from(["amishare-legacy".to_owned()]),
    );
    assert_eq!(dropped.statements().len(), 1);
}

#[test]
fn members_read_back_from_built_statements() {
    for (sid, value) in [
        (SID_ACCOUNTS, "arn:aws:iam::222222222222:root"),
        (SID_ORGANIZATIONS, "o-abcde12345"),
        (SID_OUS, "o-abcde12345/*/ou-ab12-abcdefgh/*"),
    ] {
        let target = members(sid, &[value]);
        let after = Policy::parse("{}")
            .unwrap()
            .with_managed(&target, &BTreeSet::new());
        assert_eq!(after.managed_members("aws"), target, "{sid}");
    }
}

#[test]
fn pretty_output_parses_back_equal() {
    let before = policy(&[ROOT_STATEMENT, &accounts_statement(r#""222222222222""#)]);
    let reparsed = Policy::parse(&before.to_pretty()).unwrap();
    assert_eq!(reparsed, before);
}

#[test]
fn orphaned_members_are_found() {
    let set: BTreeSet<String> = ["AROAEXAMPLEID12345678", "arn:aws:iam::222222222222:root"]
        .map(String::from)
        .into();
    assert_eq!(
        orphaned(&set),
        BTreeSet::from(["AROAEXAMPLEID12345678".to_owned()])
    );
}

#[test]
fn managed_statement_of_other_shape_is_malformed() {
    let deny = r#"{"Sid":"amishare-accounts","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::555555555555:root"},"Action":"kms:ScheduleKeyDeletion","Resource":"*"}"#;
    let state = policy(&[ROOT_STATEMENT, deny]).managed_state("aws");
    assert!(state.members.is_empty());
    assert_eq!(state.malformed, BTreeSet::from([SID_ACCOUNTS.to_owned()]));

    let conditioned = accounts_statement(r#""arn:aws:iam::222222222222:root""#).replacen(
        r#""Resource":"*""#,
        r#""Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}"#,
        1,
    );
    let state = policy(&[&conditioned]).managed_state("aws");
    assert_eq!(state.malformed, BTreeSet::from([SID_ACCOUNTS.to_owned()]));
}

#[test]
fn duplicate_managed_sid_is_malformed() {
    let one = accounts_statement(r#""arn:aws:iam::222222222222:root""#);
    let two = accounts_statement(r#""arn:aws:iam::333333333333:root""#);
    let state = policy(&[&one, &two]).managed_state("aws");
    assert!(state.members.is_empty());
    assert_eq!(state.malformed, BTreeSet::from([SID_ACCOUNTS.to_owned()]));
}

#[test]
fn unknown_managed_sid_is_listed() {
    let legacy = r#"{"Sid":"amishare-legacy","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#;
    let state = policy(&[legacy]).managed_state("aws");
    assert_eq!(
        state.unknown,
        BTreeSet::from(["amishare-legacy".to_owned()])
    );
}

#[test]
fn bare_ids_take_the_key_partition() {
    let text = accounts_statement(r#"["222222222222"]"#).replace("arn:aws:", "arn:aws-cn:");
    let members = policy(&[&text]).managed_members("aws-cn");
    assert_eq!(
        members[SID_ACCOUNTS],
        BTreeSet::from(["arn:aws-cn:iam::222222222222:root".to_owned()])
    );
    let arn = policy(&[&accounts_statement(
        r#""arn:aws-cn:iam::222222222222:root""#,
    )]);
    let bare = policy(&[&accounts_statement(r#""222222222222""#)]);
    assert!(arn.same_meaning(&bare));
}
