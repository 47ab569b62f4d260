//! KMS key policies: comparing them by meaning, and rewriting the statements amishare
//! owns (those whose `Sid` starts with `amishare-`) while keeping every other statement
//! exactly as it is.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::spec::ids::is_unique_principal_id;

mod exact;
mod lockout;

pub use lockout::{Administrator, Lockout, administrators, lockout};

/// Largest key policy KMS accepts: 32 KiB, 32,768 bytes (KMS API Reference, PutKeyPolicy
/// document size).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

/// Prefix of the `Sid` of every statement amishare owns.
pub const MANAGED_PREFIX: &str = "amishare-";

/// Statement for account principals, by root ARN.
pub const SID_ACCOUNTS: &str = "amishare-accounts";
/// Statement for organizations, through `aws:PrincipalOrgID`.
pub const SID_ORGANIZATIONS: &str = "amishare-organizations";
/// Statement for organizational units, through `aws:PrincipalOrgPaths`.
pub const SID_OUS: &str = "amishare-ous";

/// What a principal needs on the key to launch an instance from an image whose snapshots
/// are under it, and to copy such an image: without `kms:CreateGrant` the launch is
/// accepted and the instance then terminates with `Client.InternalError`.
pub const KEY_USE_ACTIONS: [&str; 5] = [
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncrypt*",
];

/// The `Sid`s amishare writes statements for.
pub const KNOWN_SIDS: [&str; 3] = [SID_ACCOUNTS, SID_ORGANIZATIONS, SID_OUS];

/// What a policy's managed statements hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagedState {
    /// Members of each well-formed statement with a known `Sid`.
    pub members: Members,
    /// Managed `Sid`s whose statement is not in the shape amishare writes, or that occur
    /// more than once. amishare does not rewrite them.
    pub malformed: BTreeSet<String>,
    /// Managed `Sid`s amishare does not write, such as those of an older version.
    pub unknown: BTreeSet<String>,
}

/// The varying part of each managed statement, by `Sid`: principal ARNs for
/// [`SID_ACCOUNTS`], organization ids for [`SID_ORGANIZATIONS`], org path patterns for
/// [`SID_OUS`].
pub type Members = BTreeMap<String, BTreeSet<String>>;

/// A key policy that is not a JSON object with a `Statement`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("key policy is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("key policy is not a JSON object")]
    NotObject,
    #[error("key policy `Statement` is neither an object nor an array of objects")]
    BadStatement,
    #[error("{0}, which KMS and amishare may read differently")]
    DuplicateField(String),
    #[error("key policy has the number `{0}`, which amishare cannot write back exactly")]
    InexactNumber(String),
}

/// A parsed key policy that keeps every statement as KMS returned it.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    document: Map<String, Value>,
    statements: Vec<Value>,
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        exact::check(text)?;
        let value: Value = serde_json::from_str(text)?;
        let Value::Object(mut document) = value else {
            return Err(PolicyError::NotObject);
        };
        let statements = match document.remove("Statement") {
            None => Vec::new(),
            Some(Value::Array(list)) if list.iter().all(Value::is_object) => list,
            Some(one @ Value::Object(_)) => vec![one],
            Some(_) => return Err(PolicyError::BadStatement),
        };
        Ok(Policy {
            document,
            statements,
        })
    }

    pub fn statements(&self) -> &[Value] {
        &self.statements
    }

    /// The statements amishare owns, with their `Sid`.
    pub fn managed(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.statements.iter().filter_map(|s| {
            let sid = sid_of(s)?;
            sid.starts_with(MANAGED_PREFIX).then_some((sid, s))
        })
    }

    /// Statements amishare does not own.
    pub fn foreign(&self) -> impl Iterator<Item = &Value> {
        self.statements
            .iter()
            .filter(|s| !sid_of(s).is_some_and(|sid| sid.starts_with(MANAGED_PREFIX)))
    }

    /// Unique ids of deleted principals (see [`is_unique_principal_id`]) that statements
    /// amishare does not own name in `Principal` or `NotPrincipal`.
    pub fn foreign_orphans(&self) -> BTreeSet<String> {
        let mut orphans = BTreeSet::new();
        for statement in self.foreign() {
            for field in ["Principal", "NotPrincipal"] {
                if let Some(Value::Object(kinds)) = statement.get(field) {
                    for values in kinds.values() {
                        orphans.extend(
                            string_set(values)
                                .into_iter()
                                .filter(|v| is_unique_principal_id(v)),
                        );
                    }
                }
            }
        }
        orphans
    }

    /// Reads the managed statements: members of those amishare writes, and the `Sid`s of
    /// those it does not recognise. `partition` is the key's, for account root ARNs.
    pub fn managed_state(&self, partition: &str) -> ManagedState {
        let mut state = ManagedState::default();
        let mut seen = BTreeSet::new();
        for (sid, statement) in self.managed() {
            if !seen.insert(sid) {
                state.malformed.insert(sid.to_owned());
                continue;
            }
            if !KNOWN_SIDS.contains(&sid) {
                state.unknown.insert(sid.to_owned());
                continue;
            }
            // A statement with a known Sid counts only if it is exactly what amishare
            // would write for its members; anything else (a Deny, a condition) is not
            // rewritten.
            let members = members_of(sid, statement, partition);
            let built = members.as_ref().and_then(|m| build_statement(sid, m));
            match (members, built) {
                (Some(members), Some(built))
                    if Canonical::of(&built) == Canonical::of(statement) =>
                {
                    state.members.insert(sid.to_owned(), members);
                }
                _ => {
                    state.malformed.insert(sid.to_owned());
                }
            }
        }
        for sid in &state.malformed {
            state.members.remove(sid);
        }
        state
    }

    /// Members of each well-formed managed statement; see [`Policy::managed_state`].
    pub fn managed_members(&self, partition: &str) -> Members {
        self.managed_state(partition).members
    }

    /// Renders the policy as it is written: pretty-printed, or compact when only that
    /// fits within [`MAX_POLICY_BYTES`]. `None` when neither fits.
    pub fn to_document(&self) -> Option<String> {
        let pretty = self.to_pretty();
        if pretty.len() <= MAX_POLICY_BYTES {
            return Some(pretty);
        }
        let compact = self.to_compact();
        (compact.len() <= MAX_POLICY_BYTES).then_some(compact)
    }

    /// Returns the size in bytes of the compact rendering, and the share of it that the
    /// statements amishare does not own take.
    pub fn compact_sizes(&self) -> (usize, usize) {
        let total = self.to_compact().len();
        let foreign = self
            .foreign()
            .map(|s| serde_json::to_string(s).map_or(0, |t| t.len()))
            .sum();
        (total, foreign)
    }

    /// Renders the policy as KMS accepts it, pretty-printed for review.
    pub fn to_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.to_value()).unwrap_or_default()
    }

    fn to_compact(&self) -> String {
        serde_json::to_string(&self.to_value()).unwrap_or_default()
    }

    /// Builds the policy document with its statements back in place.
    fn to_value(&self) -> Value {
        let mut document = self.document.clone();
        document.insert(
            "Statement".to_owned(),
            Value::Array(self.statements.clone()),
        );
        Value::Object(document)
    }

    /// Returns this policy with its managed statements rewritten: a `Sid` in `target` gets
    /// the statement built from its members (none if they are empty), a `Sid` in `drop`
    /// is removed, and any other statement, owned or not, is kept exactly.
    pub fn with_managed(&self, target: &Members, drop: &BTreeSet<String>) -> Policy {
        let mut statements = Vec::with_capacity(self.statements.len() + target.len());
        let mut placed = BTreeSet::new();
        for statement in &self.statements {
            let sid = sid_of(statement).filter(|sid| sid.starts_with(MANAGED_PREFIX));
            match sid {
                Some(sid) if target.contains_key(sid) => {
                    if placed.insert(sid.to_owned()) {
                        statements.extend(build_statement(sid, &target[sid]));
                    }
                }
                Some(sid) if drop.contains(sid) => {}
                _ => statements.push(statement.clone()),
            }
        }
        for (sid, members) in target {
            if !placed.contains(sid) {
                statements.extend(build_statement(sid, members));
            }
        }
        Policy {
            document: self.document.clone(),
            statements,
        }
    }

    /// True when both policies mean the same: same statements in any order, principals,
    /// actions and resources compared as sets, bare account ids equal to root ARNs.
    pub fn same_meaning(&self, other: &Policy) -> bool {
        let mut a: Vec<_> = self.statements.iter().map(Canonical::of).collect();
        let mut b: Vec<_> = other.statements.iter().map(Canonical::of).collect();
        a.sort();
        b.sort();
        a == b && canonical_document(&self.document) == canonical_document(&other.document)
    }
}

fn canonical_document(document: &Map<String, Value>) -> BTreeMap<String, String> {
    document
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect()
}

fn sid_of(statement: &Value) -> Option<&str> {
    statement.get("Sid").and_then(Value::as_str)
}

/// The root principal ARN of an account, in the key's partition.
pub fn account_root(partition: &str, account: &str) -> String {
    format!("arn:{partition}:iam::{account}:root")
}

/// The partition of an ARN (`aws`, `aws-cn`, ...), `aws` when it cannot be read.
pub fn partition_of(arn: &str) -> &str {
    arn.split(':')
        .nth(1)
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
}

/// Builds the managed statement for `sid`, or nothing when it has no members.
pub fn build_statement(sid: &str, members: &BTreeSet<String>) -> Option<Value> {
    if members.is_empty() {
        return None;
    }
    let values: Vec<&String> = members.iter().collect();
    let mut statement = json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": { "AWS": "*" },
        "Action": KEY_USE_ACTIONS,
        "Resource": "*",
    });
    match sid {
        SID_ACCOUNTS => statement["Principal"] = json!({ "AWS": values }),
        SID_ORGANIZATIONS => {
            statement["Condition"] = json!({ "StringEquals": { "aws:PrincipalOrgID": values } });
        }
        SID_OUS => {
            statement["Condition"] =
                json!({ "ForAnyValue:StringLike": { "aws:PrincipalOrgPaths": values } });
        }
        _ => return None,
    }
    Some(statement)
}

/// Reads the members of a managed statement with a known `Sid`.
fn members_of(sid: &str, statement: &Value, partition: &str) -> Option<BTreeSet<String>> {
    let values = match sid {
        SID_ACCOUNTS => {
            let principal = statement.get("Principal")?;
            principal.get("AWS").map(string_set)?
        }
        SID_ORGANIZATIONS => condition_values(statement, "StringEquals", "aws:PrincipalOrgID")?,
        SID_OUS => condition_values(statement, "ForAnyValue:StringLike", "aws:PrincipalOrgPaths")?,
        _ => return None,
    };
    if sid != SID_ACCOUNTS {
        return Some(values);
    }
    Some(
        values
            .into_iter()
            .map(|v| {
                if is_account_id(&v) {
                    account_root(partition, &v)
                } else {
                    v
                }
            })
            .collect(),
    )
}

fn condition_values(statement: &Value, operator: &str, key: &str) -> Option<BTreeSet<String>> {
    let block = statement.get("Condition")?.get(operator)?.as_object()?;
    // Condition key names are case-insensitive in IAM policies.
    let (_, values) = block.iter().find(|(k, _)| k.eq_ignore_ascii_case(key))?;
    Some(string_set(values))
}

/// Members that are unique ids of deleted principals (see [`is_unique_principal_id`]).
pub fn orphaned(members: &BTreeSet<String>) -> BTreeSet<String> {
    members
        .iter()
        .filter(|m| is_unique_principal_id(m))
        .cloned()
        .collect()
}

/// A string or list of strings as a set; any other JSON value by its JSON text.
fn string_set(value: &Value) -> BTreeSet<String> {
    match value {
        Value::Array(items) => items.iter().map(scalar_text).collect(),
        other => BTreeSet::from([scalar_text(other)]),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

/// KMS may return a principal given as a bare account id as its root ARN (in the key's
/// partition), so for comparison both forms become the bare id.
fn normalise_principal(value: &str) -> String {
    let root = value
        .strip_prefix("arn:")
        .and_then(|rest| rest.split_once(":iam::"))
        .and_then(|(_, rest)| rest.strip_suffix(":root"))
        .filter(|id| is_account_id(id));
    root.unwrap_or(value).to_owned()
}

/// A statement reduced to its meaning, for comparison only.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Canonical {
    fields: BTreeMap<String, CanonicalValue>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum CanonicalValue {
    Text(String),
    Set(BTreeSet<String>),
    Map(BTreeMap<String, BTreeSet<String>>),
    Condition(BTreeMap<String, BTreeMap<String, BTreeSet<String>>>),
}

impl Canonical {
    fn of(statement: &Value) -> Canonical {
        let mut fields = BTreeMap::new();
        if let Value::Object(map) = statement {
            for (name, value) in map {
                fields.insert(name.clone(), canonical_field(name, value));
            }
        }
        Canonical { fields }
    }
}

fn canonical_field(name: &str, value: &Value) -> CanonicalValue {
    match name {
        "Principal" | "NotPrincipal" => CanonicalValue::Map(canonical_principal(value)),
        // Action names are case-insensitive in IAM policies.
        "Action" | "NotAction" => CanonicalValue::Set(
            string_set(value)
                .into_iter()
                .map(|a| a.to_ascii_lowercase())
                .collect(),
        ),
        "Resource" | "NotResource" => CanonicalValue::Set(string_set(value)),
        "Condition" => CanonicalValue::Condition(canonical_condition(value)),
        _ => CanonicalValue::Text(scalar_text(value)),
    }
}

fn canonical_principal(value: &Value) -> BTreeMap<String, BTreeSet<String>> {
    match value {
        // `"*"` and `{"AWS": "*"}` grant the same principals.
        Value::String(s) if s == "*" => {
            BTreeMap::from([("AWS".to_owned(), BTreeSet::from(["*".to_owned()]))])
        }
        Value::Object(map) => map
            .iter()
            .map(|(kind, v)| {
                let set = string_set(v);
                let set = if kind == "AWS" {
                    set.iter().map(|p| normalise_principal(p)).collect()
                } else {
                    set
                };
                (kind.clone(), set)
            })
            .collect(),
        other => BTreeMap::from([(String::new(), BTreeSet::from([scalar_text(other)]))]),
    }
}

fn canonical_condition(value: &Value) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let Value::Object(operators) = value else {
        return BTreeMap::from([(scalar_text(value), BTreeMap::new())]);
    };
    operators
        .iter()
        .map(|(operator, block)| {
            let keys = match block {
                Value::Object(keys) => keys
                    .iter()
                    .map(|(key, values)| (key.to_ascii_lowercase(), string_set(values)))
                    .collect(),
                other => BTreeMap::from([(scalar_text(other), BTreeSet::new())]),
            };
            (operator.clone(), keys)
        })
        .collect()
}

#[cfg(test)]
mod tests;
