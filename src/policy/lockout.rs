//! The lockout guard: a rewritten key policy must still let the key's account and the
//! caller change the policy.
//!
//! KMS checks the caller itself unless `BypassPolicyLockoutSafetyCheck` is sent, which
//! amishare never does. This guard runs before the call, so a rewrite that would lose an
//! administrator is refused with the statements it would lose, and it also covers the
//! account root, which KMS does not check.
//!
//! The guard compares the policy before and after the rewrite. Conditions are not
//! evaluated, so it errs on the safe side. Dropping a statement that may grant
//! `kms:PutKeyPolicy` (conditional or not) needs another Allow without conditions that
//! surely does, and a Deny without conditions must not be added. Rights that IAM
//! policies or grants give are not seen. The root principal in a key policy is what lets
//! the account's IAM policies apply at all, so keeping it keeps them.

use serde_json::Value;
use wildmatch::WildMatch;

use super::{Canonical, Policy, string_set};

/// The action an administrator must keep.
const PUT_KEY_POLICY: &str = "kms:PutKeyPolicy";

/// A principal that must keep the right to change a key's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Administrator {
    /// The key's account, through its root principal.
    Account { partition: String, id: String },
    /// The principal amishare calls KMS as: a role, user or assumed-role session ARN.
    Caller(String),
}

impl Administrator {
    /// Returns the account principal of the account that owns `key_arn`.
    pub fn owner_of(key_arn: &str) -> Option<Administrator> {
        let mut parts = key_arn.split(':');
        let partition = parts.nth(1)?;
        let id = parts.nth(2)?;
        (!partition.is_empty() && id.len() == 12).then(|| Administrator::Account {
            partition: partition.to_owned(),
            id: id.to_owned(),
        })
    }

    /// Checks whether a principal value in a policy names this administrator. A statement
    /// that names the account root covers the caller too, through the account's IAM policies.
    fn named_by(&self, value: &str) -> bool {
        if value == "*" {
            return true;
        }
        match self {
            Administrator::Account { partition, id } => {
                value == id || value == format!("arn:{partition}:iam::{id}:root")
            }
            Administrator::Caller(arn) => {
                if value == arn {
                    return true;
                }
                let Some((partition, account, role)) = session_role(arn) else {
                    return root_of(arn).is_some_and(|(p, a)| {
                        value == a || value == format!("arn:{p}:iam::{a}:root")
                    });
                };
                // An assumed-role session acts as its role, which a policy names by
                // its ARN; GetCallerIdentity does not show the role's path.
                value == account
                    || value == format!("arn:{partition}:iam::{account}:root")
                    || value
                        .strip_prefix(&format!("arn:{partition}:iam::{account}:role/"))
                        .is_some_and(|rest| rest == role || rest.ends_with(&format!("/{role}")))
            }
        }
    }
}

impl std::fmt::Display for Administrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Administrator::Account { partition, id } => {
                write!(f, "the account root `arn:{partition}:iam::{id}:root`")
            }
            Administrator::Caller(arn) => write!(f, "the caller `{arn}`"),
        }
    }
}

/// Lists who must keep the right to change the policy of `key_arn`: its account root, and
/// the principal amishare calls as, when it is known.
pub fn administrators(key_arn: &str, caller: Option<&str>) -> Vec<Administrator> {
    Administrator::owner_of(key_arn)
        .into_iter()
        .chain(caller.map(|arn| Administrator::Caller(arn.to_owned())))
        .collect()
}

/// Splits an assumed-role session ARN into its partition, account and role name.
fn session_role(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(":sts::")?;
    let (account, rest) = rest.split_once(":assumed-role/")?;
    let (role, _session) = rest.split_once('/')?;
    Some((partition, account, role))
}

/// Splits an IAM or STS ARN into its partition and account.
fn root_of(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.split(':');
    let partition = parts.nth(1)?;
    let account = parts.nth(2)?;
    Some((partition, account))
}

/// The rights a rewrite would take from one administrator.
#[derive(Clone, Debug, PartialEq)]
pub struct Lockout {
    pub administrator: Administrator,
    /// Statements of the current policy that let it change the policy and that the
    /// rewrite removes or alters.
    pub lost: Vec<Value>,
    /// Deny statements the rewrite adds that take the right away.
    pub denied: Vec<Value>,
}

impl std::fmt::Display for Lockout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the new policy would no longer let {} change it",
            self.administrator
        )?;
        let describe = |statement: &Value| match statement.get("Sid").and_then(Value::as_str) {
            Some(sid) => format!("`{sid}`"),
            None => statement.to_string(),
        };
        if !self.lost.is_empty() {
            let lost: Vec<String> = self.lost.iter().map(describe).collect();
            write!(f, "; it would lose {}", lost.join(", "))?;
        }
        if !self.denied.is_empty() {
            let denied: Vec<String> = self.denied.iter().map(describe).collect();
            write!(f, "; it would be denied by {}", denied.join(", "))?;
        }
        Ok(())
    }
}

/// Finds the first administrator that `after` would lock out of the key `key_arn`.
///
/// An administrator is locked out when the rewrite drops a statement of `before` that may
/// let it change the policy, unless `after` has an Allow without conditions that surely
/// does. A Deny that the rewrite adds and that takes the right away locks it out too. An
/// administrator that `before` gives no right is not checked, because the rewrite takes
/// nothing from it.
pub fn lockout(
    before: &Policy,
    after: &Policy,
    administrators: &[Administrator],
    key_arn: &str,
) -> Option<Lockout> {
    let before_set: Vec<Canonical> = before.statements().iter().map(Canonical::of).collect();
    let after_set: Vec<Canonical> = after.statements().iter().map(Canonical::of).collect();
    administrators.iter().find_map(|admin| {
        let granting: Vec<&Value> = before
            .statements()
            .iter()
            .filter(|s| grants(s, admin, key_arn, Conditions::MayMatch))
            .collect();
        if granting.is_empty() {
            return None;
        }
        let lost: Vec<Value> = granting
            .into_iter()
            .filter(|s| !after_set.contains(&Canonical::of(s)))
            .cloned()
            .collect();
        let kept = after
            .statements()
            .iter()
            .any(|s| grants(s, admin, key_arn, Conditions::NoneAllowed));
        let denied: Vec<Value> = after
            .statements()
            .iter()
            .filter(|s| denies(s, admin, key_arn) && !before_set.contains(&Canonical::of(s)))
            .cloned()
            .collect();
        if (lost.is_empty() || kept) && denied.is_empty() {
            return None;
        }
        Some(Lockout {
            administrator: admin.clone(),
            lost: if kept { Vec::new() } else { lost },
            denied,
        })
    })
}

/// The reading of a statement's conditions, which the guard cannot evaluate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Conditions {
    /// A conditional statement may apply: what a rewrite must not drop unawares.
    MayMatch,
    /// Only a statement without conditions surely applies: what a rewrite may rely on.
    NoneAllowed,
}

/// Checks whether `statement` allows `admin` to call PutKeyPolicy on the key. A statement
/// with conditions counts only when `conditions` is [`Conditions::MayMatch`].
fn grants(statement: &Value, admin: &Administrator, key_arn: &str, conditions: Conditions) -> bool {
    effect_is(statement, "Allow")
        && (conditions == Conditions::MayMatch || statement.get("Condition").is_none())
        && statement.get("NotPrincipal").is_none()
        && names(statement.get("Principal"), admin)
        && covers_action(statement)
        && covers_resource(statement, key_arn)
}

/// Checks whether `statement` denies `admin` PutKeyPolicy on the key whatever the
/// request's context, which only a Deny without conditions does.
fn denies(statement: &Value, admin: &Administrator, key_arn: &str) -> bool {
    let principal = match (statement.get("Principal"), statement.get("NotPrincipal")) {
        (Some(principal), _) => names(Some(principal), admin),
        (None, Some(except)) => !names(Some(except), admin),
        (None, None) => false,
    };
    effect_is(statement, "Deny")
        && statement.get("Condition").is_none()
        && principal
        && covers_action(statement)
        && covers_resource(statement, key_arn)
}

fn effect_is(statement: &Value, effect: &str) -> bool {
    statement.get("Effect").and_then(Value::as_str) == Some(effect)
}

fn names(principal: Option<&Value>, admin: &Administrator) -> bool {
    match principal {
        Some(Value::String(star)) => star == "*",
        Some(Value::Object(kinds)) => kinds
            .get("AWS")
            .is_some_and(|values| string_set(values).iter().any(|v| admin.named_by(v))),
        _ => false,
    }
}

fn covers_action(statement: &Value) -> bool {
    match (statement.get("Action"), statement.get("NotAction")) {
        (Some(actions), _) => any_matches(actions, PUT_KEY_POLICY, true),
        (None, Some(except)) => !any_matches(except, PUT_KEY_POLICY, true),
        (None, None) => false,
    }
}

fn covers_resource(statement: &Value, key_arn: &str) -> bool {
    match (statement.get("Resource"), statement.get("NotResource")) {
        (Some(resources), _) => any_matches(resources, key_arn, false),
        (None, Some(except)) => !any_matches(except, key_arn, false),
        // KMS requires a resource, but a statement without one restricts nothing here.
        (None, None) => true,
    }
}

/// Checks whether any pattern in `patterns` (IAM wildcards `*` and `?`) matches `text`.
fn any_matches(patterns: &Value, text: &str, ignore_case: bool) -> bool {
    string_set(patterns).iter().any(|pattern| {
        if ignore_case {
            WildMatch::new_case_insensitive(pattern).matches(text)
        } else {
            WildMatch::new(pattern).matches(text)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const ROLE: &str = "arn:aws:iam::111111111111:role/ops/amishare";
    const SESSION: &str = "arn:aws:sts::111111111111:assumed-role/amishare/amishare";

    fn policy(statements: &str) -> Policy {
        Policy::parse(&format!(
            r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#
        ))
        .expect("test policy parses")
    }

    fn root() -> Administrator {
        Administrator::owner_of(KEY).expect("key ARN has an account")
    }

    const ROOT_ADMIN: &str = r#"{"Sid": "root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"}"#;
    const ROLE_ADMIN: &str = r#"{"Sid": "role", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:role/ops/amishare"}, "Action": ["kms:Put*", "kms:Get*"], "Resource": "*"}"#;
    const USE_ONLY: &str = r#"{"Sid": "use", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "kms:Decrypt", "Resource": "*"}"#;

    #[test]
    fn owner_is_read_from_the_key_arn() {
        assert_eq!(
            root(),
            Administrator::Account {
                partition: "aws".into(),
                id: "111111111111".into()
            }
        );
        assert_eq!(Administrator::owner_of("alias/golden"), None);
    }

    #[test]
    fn unchanged_admin_statement_is_no_lockout() {
        let before = policy(ROOT_ADMIN);
        let after = policy(&format!("{ROOT_ADMIN}, {USE_ONLY}"));
        assert_eq!(lockout(&before, &after, &[root()], KEY), None);
    }

    #[test]
    fn lockout_names_lost_root_grant() {
        let before = policy(&format!("{ROOT_ADMIN}, {USE_ONLY}"));
        let after = policy(USE_ONLY);
        let found = lockout(&before, &after, &[root()], KEY).expect("root is locked out");
        assert_eq!(found.administrator, root());
        assert_eq!(found.lost.len(), 1);
        assert_eq!(found.lost[0]["Sid"], "root");
        let message = found.to_string();
        assert!(
            message.contains("arn:aws:iam::111111111111:root"),
            "{message}"
        );
        assert!(message.contains("`root`"), "{message}");
    }

    #[test]
    fn another_grant_that_remains_is_enough() {
        let bare_account = r#"{"Effect": "Allow", "Principal": {"AWS": "111111111111"}, "Action": "kms:PutKeyPolicy", "Resource": "*"}"#;
        let before = policy(&format!("{ROOT_ADMIN}, {bare_account}"));
        let after = policy(bare_account);
        assert_eq!(lockout(&before, &after, &[root()], KEY), None);
    }

    #[test]
    fn session_caller_matches_its_role_with_a_path() {
        let caller = Administrator::Caller(SESSION.into());
        let before = policy(&format!("{ROLE_ADMIN}, {USE_ONLY}"));
        let after = policy(USE_ONLY);
        let found = lockout(&before, &after, std::slice::from_ref(&caller), KEY)
            .expect("caller locked out");
        assert_eq!(found.lost[0]["Sid"], "role");
        // The role by its full ARN, as the spec's `role_arn` gives it.
        let by_arn = Administrator::Caller(ROLE.into());
        assert!(lockout(&before, &after, &[by_arn], KEY).is_some());
        // Root in the policy lets IAM policies grant the caller.
        let with_root = policy(ROOT_ADMIN);
        assert_eq!(lockout(&with_root, &with_root, &[caller], KEY), None);
    }

    #[test]
    fn lockout_skips_admin_without_rights() {
        let before = policy(USE_ONLY);
        let after = policy(&format!("{USE_ONLY}, {}", USE_ONLY.replace("use", "use2")));
        assert_eq!(lockout(&before, &after, &[root()], KEY), None);
    }

    #[test]
    fn conditional_allow_is_no_grant() {
        // Only a principal that matches the condition may use this statement, and the
        // condition may match no one.
        let break_glass = r#"{"Sid": "break-glass", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/gone"}}}"#;
        let before = policy(&format!("{ROOT_ADMIN}, {break_glass}"));
        let after = policy(break_glass);
        let found = lockout(&before, &after, &[root()], KEY).expect("root is locked out");
        assert_eq!(found.lost.len(), 1);
        assert_eq!(found.lost[0]["Sid"], "root");
    }

    #[test]
    fn dropping_the_only_conditional_grant_is_a_lockout() {
        let scoped = r#"{"Sid": "scoped", "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": "111111111111"}}}"#;
        let before = policy(&format!("{USE_ONLY}, {scoped}"));
        let found = lockout(&before, &policy(USE_ONLY), &[root()], KEY).expect("locked out");
        assert_eq!(found.lost[0]["Sid"], "scoped");
        // Kept as it was, it takes nothing away.
        assert_eq!(lockout(&before, &before, &[root()], KEY), None);
    }

    #[test]
    fn lockout_on_new_unconditional_deny() {
        let deny = r#"{"Sid": "no", "Effect": "Deny", "Principal": "*", "Action": "kms:PutKeyPolicy", "Resource": "*"}"#;
        let before = policy(ROOT_ADMIN);
        let after = policy(&format!("{ROOT_ADMIN}, {deny}"));
        let found = lockout(&before, &after, &[root()], KEY).expect("deny locks out");
        assert!(found.lost.is_empty());
        assert_eq!(found.denied[0]["Sid"], "no");
        // The same Deny with a condition may not apply, and a Deny already there before
        // the rewrite is not the rewrite's doing.
        let conditional = deny.replace(
            r#""Resource": "*""#,
            r#""Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}"#,
        );
        assert_eq!(
            lockout(
                &before,
                &policy(&format!("{ROOT_ADMIN}, {conditional}")),
                &[root()],
                KEY
            ),
            None
        );
        assert_eq!(lockout(&after, &after, &[root()], KEY), None);
    }

    #[test]
    fn action_and_resource_patterns_are_matched() {
        for (action, covers) in [
            (r#""*""#, true),
            (r#""KMS:putkeypolicy""#, true),
            (r#""kms:Put?eyPolicy""#, true),
            (r#""kms:Get*""#, false),
        ] {
            let statement = format!(
                r#"{{"Effect": "Allow", "Principal": "*", "Action": {action}, "Resource": "*"}}"#
            );
            let value: Value = serde_json::from_str(&statement).expect("statement is JSON");
            assert_eq!(
                grants(&value, &root(), KEY, Conditions::NoneAllowed),
                covers,
                "{action}"
            );
        }
        let not_action: Value = serde_json::from_str(
            r#"{"Effect": "Allow", "Principal": "*", "NotAction": "kms:Decrypt", "Resource": "*"}"#,
        )
        .expect("statement is JSON");
        assert!(grants(&not_action, &root(), KEY, Conditions::NoneAllowed));
        let other_key: Value = serde_json::from_str(
            r#"{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "arn:aws:kms:us-east-1:111111111111:key/other"}"#,
        )
        .expect("statement is JSON");
        assert!(!grants(&other_key, &root(), KEY, Conditions::NoneAllowed));
    }

    #[test]
    fn another_accounts_root_does_not_count() {
        let other = r#"{"Sid": "other", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "kms:*", "Resource": "*"}"#;
        let before = policy(&format!("{ROOT_ADMIN}, {other}"));
        let after = policy(other);
        assert!(lockout(&before, &after, &[root()], KEY).is_some());
    }
}
