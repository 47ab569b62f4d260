//! Checks for the identifier formats a spec uses: account ids, regions, image ids, ARNs.
//!
//! Each check returns the reason a value is wrong, phrased to follow "invalid X `value`:".

use std::sync::LazyLock;

use regex::Regex;

fn regex(pattern: &str) -> Regex {
    // The patterns are literals in this file, covered by the tests below.
    #[allow(clippy::unwrap_used)]
    Regex::new(pattern).unwrap()
}

// `[0-9]`, not `\d`: Rust's `\d` also matches non-ASCII digits, which AWS rejects.
static ACCOUNT_ID: LazyLock<Regex> = LazyLock::new(|| regex(r"^[0-9]{12}$"));
// Partitions: aws, aws-cn, aws-us-gov and the isolated ones (aws-iso, aws-iso-b, ...).
static PARTITION: &str = r"aws(?:-cn|-us-gov|-iso(?:-[a-z])?|-eusc)?";
static REGION: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$"));
// EC2 image ids are `ami-` and 8 or 17 hex digits (older and current formats).
static IMAGE_ID: LazyLock<Regex> = LazyLock::new(|| regex(r"^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$"));
static ROLE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"^arn:{PARTITION}:iam::([0-9]{{12}}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{{1,64}}$"
    ))
});
// Organization ARN formats from the AWS Organizations API reference (Organization.Arn,
// OrganizationalUnit.Arn): ids are `o-` plus 10 to 32 lowercase letters or digits, OU ids
// `ou-` plus 4 to 32 of them (the root's suffix), `-`, and 8 to 32 more.
static ORGANIZATION_ARN: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"^arn:{PARTITION}:organizations::[0-9]{{12}}:organization/(o-[a-z0-9]{{10,32}})$"
    ))
});
static OU_ARN: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"^arn:{PARTITION}:organizations::[0-9]{{12}}:ou/(o-[a-z0-9]{{10,32}})/(ou-[a-z0-9]{{4,32}}-[a-z0-9]{{8,32}})$"
    ))
});
// KMS key ids are UUIDs, or `mrk-` and 32 hex digits for multi-Region keys.
const KEY_ID_PATTERN: &str =
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})";
const ALIAS_PATTERN: &str = r"alias/[a-zA-Z0-9/_-]{1,250}";
static KEY_ID: LazyLock<Regex> = LazyLock::new(|| regex(&format!("^{KEY_ID_PATTERN}$")));
static ALIAS_NAME: LazyLock<Regex> = LazyLock::new(|| regex(&format!("^{ALIAS_PATTERN}$")));
static KMS_ARN: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"^arn:{PARTITION}:kms:([a-z0-9-]+):([0-9]{{12}}):(key/{KEY_ID_PATTERN}|{ALIAS_PATTERN})$"
    ))
});

static NAME: LazyLock<Regex> = LazyLock::new(|| regex(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"));

/// Checks a logical name of an account or key. A name starts with a letter, so it can
/// never be mistaken for an account id where either is accepted.
pub fn check_name(value: &str) -> Result<(), String> {
    if NAME.is_match(value) {
        Ok(())
    } else {
        Err("expected a letter followed by up to 63 letters, digits, `-`, `_` or `.`".to_owned())
    }
}

/// Checks a 12-digit account id. The spec loader reads the scalar's text, so an unquoted
/// number arrives as written: `1.1e11` stays `1.1e11` and is rejected here.
pub fn check_account_id(value: &str) -> Result<(), String> {
    if ACCOUNT_ID.is_match(value) {
        return Ok(());
    }
    Err(account_id_problem(value))
}

// YAML number forms that are not 12 plain digits: a sign, another base, a fraction or an
// exponent.
static SIGNED: LazyLock<Regex> = LazyLock::new(|| regex(r"^[+-][0-9._eE]+$"));
static OTHER_BASE: LazyLock<Regex> = LazyLock::new(|| regex(r"^0[xXoObB][0-9a-fA-F_]+$"));
static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"^[0-9]*(?:[0-9]\.|\.[0-9])[0-9]*(?:[eE][+-]?[0-9]+)?$|^[0-9.]+[eE][+-]?[0-9]+$")
});
// Any ARN with an account id in its fifth field, such as `arn:aws:iam::111111111111:root`.
static ARN_ACCOUNT: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^arn:[a-z-]+:[a-z0-9-]+:[a-z0-9-]*:([0-9]{12}):"));

fn account_id_problem(value: &str) -> String {
    const EXPECTED: &str = "expected exactly 12 digits";
    if value.is_empty() {
        return format!("the id is empty; {EXPECTED}");
    }
    if value.chars().all(|c| c.is_ascii_digit()) {
        return format!("{EXPECTED}, found {}", value.len());
    }
    if let Some(caps) = ARN_ACCOUNT.captures(value) {
        return format!(
            "this is an ARN, not an account id; write the id it names, `{}`",
            &caps[1]
        );
    }
    if SIGNED.is_match(value) {
        return format!("an account id has no sign; {EXPECTED}");
    }
    if OTHER_BASE.is_match(value) {
        return format!(
            "`{}` makes this a number in another base; {EXPECTED}",
            &value[..2]
        );
    }
    if FLOAT.is_match(value) {
        return format!("this is a floating-point number; {EXPECTED}");
    }
    let separated = value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '_' | ' '));
    if separated {
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        if digits.len() == 12 {
            return format!("{EXPECTED} without separators, such as `{digits}`");
        }
        return format!("{EXPECTED} without separators, found {}", digits.len());
    }
    if let Some(digit) = value
        .chars()
        .find(|c| c.is_numeric() && !c.is_ascii_digit())
    {
        return format!("`{digit}` is not one of the ASCII digits 0-9; {EXPECTED}");
    }
    format!("{EXPECTED} and nothing else")
}

/// Regions that exist, as listed by AWS at the end of 2026.
// NOTE: AWS opens regions every year; a region newer than this list is rejected until it
// is added here.
const REGIONS: [&str; 41] = [
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eusc-de-east-1",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
    "us-iso-east-1",
    "us-isob-east-1",
];

pub fn check_region(value: &str) -> Result<(), String> {
    if !REGION.is_match(value) && !value.starts_with("eusc-") {
        return Err("expected a region name such as `eu-west-1`".to_owned());
    }
    if REGIONS.contains(&value) {
        Ok(())
    } else {
        Err("no such AWS region".to_owned())
    }
}

/// The partition a region belongs to, as ARNs in it spell it.
pub fn partition_of_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("eusc-") {
        "aws-eusc"
    } else {
        "aws"
    }
}

pub fn check_image_id(value: &str) -> Result<(), String> {
    if IMAGE_ID.is_match(value) {
        Ok(())
    } else {
        Err("expected `ami-` followed by 8 or 17 lowercase hex digits".to_owned())
    }
}

/// Checks a role ARN and returns the account id it names.
pub fn parse_role_arn(value: &str) -> Result<String, String> {
    match ROLE_ARN.captures(value) {
        Some(caps) => Ok(caps[1].to_owned()),
        None => Err(role_arn_problem(value)),
    }
}

// The parts of an ARN that looks like one of the kinds the spec takes, to say which part is
// wrong when the strict patterns above do not match.
static IAM_ARN_PARTS: LazyLock<Regex> = LazyLock::new(|| regex(r"^arn:[^:]*:iam::([^:]*):(.*)$"));
static STS_SESSION_ARN: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"^arn:({PARTITION}):sts::([0-9]{{12}}):assumed-role/([^/]+)/[^/]+$"
    ))
});
static KMS_ARN_PARTS: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^arn:[^:]*:kms:([^:]*):([^:]*):(.*)$"));
static ORGANIZATION_ARN_PARTS: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^arn:[^:]*:organizations::([^:]*):organization/(.*)$"));
static OU_ARN_PARTS: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^arn:[^:]*:organizations::([^:]*):ou/([^/]*)/(.*)$"));
static ORGANIZATION_ID: LazyLock<Regex> = LazyLock::new(|| regex(r"^o-[a-z0-9]{10,32}$"));
static OU_ID: LazyLock<Regex> = LazyLock::new(|| regex(r"^ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$"));

const ORGANIZATION_ID_FORMAT: &str =
    "an organization id is `o-` and 10 to 32 lowercase letters or digits";
const OU_ID_FORMAT: &str =
    "an OU id is `ou-`, 4 to 32 lowercase letters or digits, `-`, and 8 to 32 more";

fn role_arn_problem(value: &str) -> String {
    let expected = "expected `arn:aws:iam::ACCOUNT_ID:role/NAME`";
    if let Some(caps) = STS_SESSION_ARN.captures(value) {
        return format!(
            "this is an assumed-role session; the role itself is `arn:{}:iam::{}:role/{}`",
            &caps[1], &caps[2], &caps[3]
        );
    }
    if !value.starts_with("arn:") {
        return format!("a role name alone is not an ARN; {expected}");
    }
    let Some(caps) = IAM_ARN_PARTS.captures(value) else {
        return expected.to_owned();
    };
    let (account, resource) = (&caps[1], &caps[2]);
    if !ACCOUNT_ID.is_match(account) {
        return format!("`{account}` is not a 12-digit account id; {expected}");
    }
    match resource.split_once('/') {
        Some(("role", _)) => format!(
            "a role name has up to 64 letters, digits and `+=,.@_-`, after an optional path; \
             {expected}"
        ),
        Some((kind, _)) => format!("this is an IAM {kind}, not a role; {expected}"),
        None if resource == "root" => format!("this is the account itself, not a role; {expected}"),
        None => expected.to_owned(),
    }
}

/// Checks an organization ARN and returns the organization id (`o-...`).
pub fn parse_organization_arn(value: &str) -> Result<String, String> {
    if let Some(caps) = ORGANIZATION_ARN.captures(value) {
        return Ok(caps[1].to_owned());
    }
    let expected = "expected `arn:aws:organizations::MANAGEMENT_ACCOUNT_ID:organization/o-ID`";
    if OU_ARN.is_match(value) {
        return Err(format!(
            "this is an OU ARN; put it under `ou`, or {expected}"
        ));
    }
    if value.starts_with("o-") {
        return Err(format!(
            "a bare organization id is not accepted by EC2; {expected}"
        ));
    }
    if value.contains(":iam::") || value.contains(":account/") {
        return Err(format!("an account ARN is not an organization; {expected}"));
    }
    if let Some(caps) = ORGANIZATION_ARN_PARTS.captures(value) {
        let (account, id) = (&caps[1], &caps[2]);
        if !ACCOUNT_ID.is_match(account) {
            return Err(format!(
                "`{account}` is not a 12-digit management account id; {expected}"
            ));
        }
        if !ORGANIZATION_ID.is_match(id) {
            return Err(format!(
                "`{id}` is not an organization id: {ORGANIZATION_ID_FORMAT}"
            ));
        }
    }
    Err(expected.to_owned())
}

/// An organizational unit named by its ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OuParts {
    pub organization_id: String,
    pub ou_id: String,
}

/// Checks an OU ARN and returns its parts.
pub fn parse_ou_arn(value: &str) -> Result<OuParts, String> {
    if let Some(caps) = OU_ARN.captures(value) {
        return Ok(OuParts {
            organization_id: caps[1].to_owned(),
            ou_id: caps[2].to_owned(),
        });
    }
    let expected =
        "expected `arn:aws:organizations::MANAGEMENT_ACCOUNT_ID:ou/o-ORG_ID/ou-ROOT-OU_ID`";
    if ORGANIZATION_ARN.is_match(value) {
        return Err(format!(
            "this is an organization ARN; put it under `organization`, or {expected}"
        ));
    }
    if value.starts_with("ou-") {
        return Err(format!("a bare OU id is not accepted by EC2; {expected}"));
    }
    if let Some(caps) = OU_ARN_PARTS.captures(value) {
        let (account, organization, ou) = (&caps[1], &caps[2], &caps[3]);
        if !ACCOUNT_ID.is_match(account) {
            return Err(format!(
                "`{account}` is not a 12-digit management account id; {expected}"
            ));
        }
        if !ORGANIZATION_ID.is_match(organization) {
            return Err(format!(
                "`{organization}` is not an organization id: {ORGANIZATION_ID_FORMAT}"
            ));
        }
        if !OU_ID.is_match(ou) {
            return Err(format!("`{ou}` is not an OU id: {OU_ID_FORMAT}"));
        }
    }
    Err(expected.to_owned())
}

/// How a spec names a KMS key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyForm {
    Alias,
    Id,
    /// A key or alias ARN, with the region and account it names.
    Arn {
        region: String,
        account: String,
    },
}

pub fn parse_key_reference(value: &str) -> Result<KeyForm, String> {
    if ALIAS_NAME.is_match(value) {
        return Ok(KeyForm::Alias);
    }
    if KEY_ID.is_match(value) {
        return Ok(KeyForm::Id);
    }
    if let Some(caps) = KMS_ARN.captures(value) {
        return Ok(KeyForm::Arn {
            region: caps[1].to_owned(),
            account: caps[2].to_owned(),
        });
    }
    Err(key_reference_problem(value))
}

fn key_reference_problem(value: &str) -> String {
    let expected = "expected `alias/NAME`, a key id, or a key or alias ARN \
                    (`arn:aws:kms:REGION:ACCOUNT_ID:key/KEY_ID`)";
    let key_id = "a key id is a UUID such as `1234abcd-12ab-34cd-56ef-1234567890ab`, or `mrk-` \
                  and 32 hex digits";
    let alias = "an alias name has up to 250 letters, digits, `/`, `_` and `-`";
    if let Some(caps) = KMS_ARN_PARTS.captures(value) {
        let (region, account, resource) = (&caps[1], &caps[2], &caps[3]);
        let arn_format = "expected `arn:aws:kms:REGION:ACCOUNT_ID:key/KEY_ID`";
        if region.is_empty() {
            return format!("the ARN has no region; {arn_format}");
        }
        if !ACCOUNT_ID.is_match(account) {
            return format!("`{account}` is not a 12-digit account id; {arn_format}");
        }
        match resource.strip_prefix("key/") {
            Some("") => return format!("the ARN has no key id after `key/`; {key_id}"),
            Some(id) => return format!("`{id}` is not a key id: {key_id}"),
            None => {}
        }
        if resource.starts_with("alias/") {
            return format!("`{resource}` is not a valid alias: {alias}");
        }
        return format!("`{resource}` is neither `key/KEY_ID` nor `alias/NAME`");
    }
    if value.starts_with("alias/") {
        return format!("`{value}` is not a valid alias: {alias}");
    }
    if NAME.is_match(value) {
        return format!("a bare name is not a key; an alias is written `alias/{value}`");
    }
    expected.to_owned()
}

/// True when `value`, an alias, key id or ARN, names the key declared with `reference` in
/// `account` and `region`. An alias and an alias ARN match, and so do a key id and a key
/// ARN, when the ARN names that account and region. An alias never matches a key id,
/// because which key an alias points at is known only to KMS.
pub fn same_key(reference: &str, account: &str, region: &str, value: &str) -> bool {
    let (Some(declared), Some(given)) = (key_target(reference), key_target(value)) else {
        return false;
    };
    let in_place = |target: &KeyTarget| {
        target.account.as_deref().is_none_or(|a| a == account)
            && target.region.as_deref().is_none_or(|r| r == region)
    };
    declared.resource == given.resource && in_place(&declared) && in_place(&given)
}

/// What a key reference points at: `alias/NAME` or `key/KEY_ID`, with the account and
/// region when the reference is an ARN.
struct KeyTarget {
    resource: String,
    account: Option<String>,
    region: Option<String>,
}

fn key_target(value: &str) -> Option<KeyTarget> {
    if ALIAS_NAME.is_match(value) {
        return Some(KeyTarget {
            resource: value.to_owned(),
            account: None,
            region: None,
        });
    }
    if KEY_ID.is_match(value) {
        return Some(KeyTarget {
            resource: format!("key/{value}"),
            account: None,
            region: None,
        });
    }
    let caps = KMS_ARN.captures(value)?;
    Some(KeyTarget {
        resource: caps[3].to_owned(),
        account: Some(caps[2].to_owned()),
        region: Some(caps[1].to_owned()),
    })
}

/// True for the unique ids IAM shows in place of a deleted principal: roles `AROA`, users
/// `AIDA`, groups `AGPA`; the other prefixes are IAM's for other kinds of principal.
pub fn is_unique_principal_id(value: &str) -> bool {
    let prefixes = ["AROA", "AIDA", "AGPA", "ANPA", "ANVA", "ASIA", "AIPA"];
    value.len() >= 16
        && prefixes.iter().any(|p| value.starts_with(p))
        && value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        assert!(check_account_id("012345678901").is_ok());
        let cases = [
            ("", "empty"),
            ("12345678901", "found 11"),
            ("1234567890123", "found 13"),
            ("-12345678901", "no sign"),
            ("+123456789012", "no sign"),
            ("0o1234567012", "`0o` makes this a number in another base"),
            ("0x1A2B3C4D5E", "`0x` makes this a number in another base"),
            ("1.2345678901e11", "floating-point"),
            ("123456789012.0", "floating-point"),
            ("1e12", "floating-point"),
            ("111_111_111_111", "such as `111111111111`"),
            ("1111-1111-1111", "such as `111111111111`"),
            ("1111 1111 111", "without separators, found 11"),
            ("arn:aws:iam::111111111111:root", "`111111111111`"),
            (
                "１２３４５６７８９０１２",
                "`１` is not one of the ASCII digits",
            ),
            ("١٢٣٤٥٦٧٨٩٠١٢", "not one of the ASCII digits"),
            ("12345678901a", "nothing else"),
            (".inf", "nothing else"),
        ];
        for (value, reason) in cases {
            let problem = check_account_id(value).unwrap_err();
            assert!(problem.contains(reason), "{value}: {problem}");
        }
    }

    #[test]
    fn names() {
        assert!(check_name("prod-eu_1.b").is_ok());
        for bad in ["", "222222222222", "~", "1prod", "pro d", "é"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "eu-west-1",
            "us-gov-west-1",
            "ap-southeast-5",
            "cn-north-1",
        ] {
            assert!(check_region(ok).is_ok(), "{ok}");
        }
        for bad in [
            "useast1",
            "US-EAST-1",
            "us-east",
            "eu-west-1a",
            "",
            "us-east-١",
        ] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn partitions() {
        assert_eq!(partition_of_region("us-east-1"), "aws");
        assert_eq!(partition_of_region("cn-north-1"), "aws-cn");
        assert_eq!(partition_of_region("us-gov-west-1"), "aws-us-gov");
    }

    #[test]
    fn image_ids() {
        assert!(check_image_id("ami-0123456789abcdef0").is_ok());
        assert!(check_image_id("ami-12345678").is_ok());
        assert!(check_image_id("ami-0123456789ABCDEF0").is_err());
        assert!(check_image_id("snap-0123456789abcdef0").is_err());
    }

    #[test]
    fn role_arns() {
        assert_eq!(
            parse_role_arn("arn:aws:iam::012345678901:role/path/amishare").unwrap(),
            "012345678901"
        );
        let cases = [
            ("amishare", "a role name alone"),
            ("arn:aws:iam::012345678901:user/bob", "this is an IAM user"),
            ("arn:aws:iam::012345678901:root", "the account itself"),
            (
                "arn:aws:iam::12345:role/x",
                "`12345` is not a 12-digit account id",
            ),
            (
                "arn:aws:iam::012345678901:role/ami share",
                "a role name has up to 64",
            ),
            (
                "arn:aws:sts::012345678901:assumed-role/amishare/ci",
                "the role itself is `arn:aws:iam::012345678901:role/amishare`",
            ),
        ];
        for (value, reason) in cases {
            let problem = parse_role_arn(value).unwrap_err();
            assert!(problem.contains(reason), "{value}: {problem}");
        }
    }

    #[test]
    fn organization_arns() {
        let org = "arn:aws:organizations::111111111111:organization/o-abcde12345";
        assert_eq!(parse_organization_arn(org).unwrap(), "o-abcde12345");
        let ou = "arn:aws:organizations::111111111111:ou/o-abcde12345/ou-ab12-abcdefgh";
        assert!(parse_organization_arn(ou).unwrap_err().contains("OU ARN"));
        assert!(
            parse_organization_arn("o-abcde12345")
                .unwrap_err()
                .contains("bare")
        );
        let account = "arn:aws:iam::111111111111:root";
        assert!(
            parse_organization_arn(account)
                .unwrap_err()
                .contains("account ARN")
        );
        let cases = [
            (
                "arn:aws:organizations::1:organization/o-abcde12345",
                "`1` is not a 12-digit management account id",
            ),
            (
                "arn:aws:organizations::111111111111:organization/o-abc",
                "`o-abc` is not an organization id",
            ),
            (
                "arn:aws:organizations::111111111111:organization/O-ABCDE12345",
                "`O-ABCDE12345` is not an organization id",
            ),
        ];
        for (value, reason) in cases {
            let problem = parse_organization_arn(value).unwrap_err();
            assert!(problem.contains(reason), "{value}: {problem}");
        }
    }

    #[test]
    fn ou_arns() {
        let ou = "arn:aws:organizations::111111111111:ou/o-abcde12345/ou-ab12-abcdefgh";
        let parts = parse_ou_arn(ou).unwrap();
        assert_eq!(parts.organization_id, "o-abcde12345");
        assert_eq!(parts.ou_id, "ou-ab12-abcdefgh");
        let org = "arn:aws:organizations::111111111111:organization/o-abcde12345";
        assert!(parse_ou_arn(org).unwrap_err().contains("organization ARN"));
        assert!(
            parse_ou_arn("ou-ab12-abcdefgh")
                .unwrap_err()
                .contains("bare")
        );
        let cases = [
            (
                "arn:aws:organizations::111111111111:ou/o-abcde12345/ou-ab12",
                "`ou-ab12` is not an OU id",
            ),
            (
                "arn:aws:organizations::111111111111:ou/o-abc/ou-ab12-abcdefgh",
                "`o-abc` is not an organization id",
            ),
            (
                "arn:aws:organizations::11111111111:ou/o-abcde12345/ou-ab12-abcdefgh",
                "`11111111111` is not a 12-digit management account id",
            ),
        ];
        for (value, reason) in cases {
            let problem = parse_ou_arn(value).unwrap_err();
            assert!(problem.contains(reason), "{value}: {problem}");
        }
    }

    #[test]
    fn key_references() {
        assert_eq!(parse_key_reference("alias/golden").unwrap(), KeyForm::Alias);
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(parse_key_reference(id).unwrap(), KeyForm::Id);
        let arn = format!("arn:aws:kms:eu-west-1:111111111111:key/{id}");
        assert_eq!(
            parse_key_reference(&arn).unwrap(),
            KeyForm::Arn {
                region: "eu-west-1".into(),
                account: "111111111111".into()
            }
        );
        let alias_arn = "arn:aws:kms:eu-west-1:111111111111:alias/golden";
        assert!(matches!(
            parse_key_reference(alias_arn),
            Ok(KeyForm::Arn { .. })
        ));
        let cases = [
            ("golden", "an alias is written `alias/golden`"),
            ("alias/gold en", "`alias/gold en` is not a valid alias"),
            (
                "arn:aws:kms::111111111111:key/{id}",
                "the ARN has no region",
            ),
            (
                "arn:aws:kms:eu-west-1:1111:key/{id}",
                "`1111` is not a 12-digit",
            ),
            (
                "arn:aws:kms:eu-west-1:111111111111:key/1234abcd",
                "`1234abcd` is not a key id",
            ),
            (
                "arn:aws:kms:eu-west-1:111111111111:key/",
                "no key id after `key/`",
            ),
            (
                "arn:aws:kms:eu-west-1:111111111111:keys/{id}",
                "neither `key/KEY_ID`",
            ),
            ("~", "expected `alias/NAME`"),
        ];
        for (value, reason) in cases {
            let value = value.replace("{id}", id);
            let problem = parse_key_reference(&value).unwrap_err();
            assert!(problem.contains(reason), "{value}: {problem}");
        }
    }

    #[test]
    fn same_key_across_forms() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let arn = format!("arn:aws:kms:eu-west-1:111111111111:key/{id}");
        let alias_arn = "arn:aws:kms:eu-west-1:111111111111:alias/golden";
        let matches_declared =
            |reference: &str, value: &str| same_key(reference, "111111111111", "eu-west-1", value);
        assert!(matches_declared("alias/golden", "alias/golden"));
        assert!(matches_declared("alias/golden", alias_arn));
        assert!(matches_declared(alias_arn, "alias/golden"));
        assert!(matches_declared(&arn, id));
        assert!(matches_declared(id, &arn));
        assert!(!matches_declared("alias/golden", id));
        assert!(!matches_declared("alias/golden", "alias/other"));
        assert!(!matches_declared(
            id,
            &arn.replace("111111111111", "222222222222")
        ));
        assert!(!matches_declared(
            id,
            &arn.replace("eu-west-1", "us-east-1")
        ));
        assert!(!matches_declared("alias/golden", "golden"));
    }

    #[test]
    fn unique_principal_ids() {
        assert!(is_unique_principal_id("AROAEXAMPLEID12345678"));
        assert!(is_unique_principal_id("AIDAJQABLZS4A3QDU576Q"));
        assert!(!is_unique_principal_id("arn:aws:iam::111111111111:root"));
        assert!(!is_unique_principal_id("AROA"));
    }
}
