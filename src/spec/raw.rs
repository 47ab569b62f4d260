//! The spec as written in YAML: plain values, before any validation.
//!
//! These types mirror the file exactly and define the JSON Schema. Nothing downstream
//! uses them: `validate` turns them into the resolved types in the parent module.

use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// An account id: 12 digits, quoted or not. The loader reads the scalar's text, so an
/// unquoted id keeps its leading zeros; editors see an integer there, which is allowed.
fn account_id_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            { "type": "string", "pattern": "^[0-9]{12}$" },
            { "type": "integer", "minimum": 0, "maximum": 999_999_999_999u64 }
        ]
    })
}

/// A logical account name or a 12-digit account id, quoted or not.
fn account_reference_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "integer"] })
}

/// An amishare spec: which images are shared with whom, under which keys.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "amishare spec")]
pub struct RawSpec {
    /// Spec format version. Only `1` exists.
    pub version: u32,
    /// Behaviour switches that apply to the whole spec.
    #[serde(default)]
    pub settings: Option<RawSettings>,
    /// AWS accounts amishare acts in, and how to reach them.
    #[serde(default)]
    pub accounts: Vec<RawAccount>,
    /// Customer managed KMS keys whose policies amishare manages.
    #[serde(default)]
    pub keys: Vec<RawKey>,
    /// Groups of images and the principals each is shared with.
    #[serde(default)]
    pub images: Vec<RawImage>,
}

/// Behaviour switches that apply to the whole spec.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawSettings {
    /// Remove launch permissions, create-volume permissions and `amishare-` key policy
    /// statements that the spec does not declare. When off (the default), they are
    /// reported and kept.
    #[serde(default)]
    pub prune: Option<bool>,
    /// Allow `group: all` share entries, which make an image public. Off by default.
    #[serde(default)]
    pub allow_public: Option<bool>,
}

/// An AWS account amishare acts in.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawAccount {
    /// Logical name, used to refer to the account elsewhere in the spec.
    pub name: String,
    /// The 12-digit account id. Quote it or not: leading zeros are kept either way.
    #[schemars(schema_with = "account_id_schema")]
    pub id: String,
    /// Role to assume for calls in this account. Without it, the ambient credentials
    /// must act in this account.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// External id to pass when assuming `role_arn`.
    #[serde(default)]
    pub external_id: Option<String>,
}

/// A customer managed KMS key whose `amishare-` policy statements amishare manages.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawKey {
    /// Logical name, used by `images[].key`.
    pub name: String,
    /// The account that owns the key: a logical name from `accounts` or its id.
    #[schemars(schema_with = "account_reference_schema")]
    pub account: String,
    /// The key's region, such as `eu-west-1`.
    pub region: String,
    /// The key: `alias/NAME`, a key id, a key ARN or an alias ARN.
    pub key: String,
}

/// A group of images in one account and region, shared the same way.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawImage {
    /// The account that owns the images: a logical name from `accounts` or its id.
    #[schemars(schema_with = "account_reference_schema")]
    pub account: String,
    /// The images' region, such as `eu-west-1`.
    pub region: String,
    /// Image ids (`ami-...`) selected by this entry. Give `ids` or `select`.
    #[serde(default)]
    pub ids: Vec<String>,
    /// Images selected by name, tags and age, resolved when planning.
    #[serde(default)]
    pub select: Option<RawSelect>,
    /// Logical name of the key (from `keys`) that every snapshot of these images must be
    /// encrypted under. Leave it out for unencrypted images.
    #[serde(default)]
    pub key: Option<String>,
    /// When a snapshot is not under `key` (an AWS managed key, another key, or none),
    /// share a copy re-encrypted under `key` in place of the image. Off by default, when
    /// such an image is reported as blocked.
    #[serde(default)]
    pub reencrypt: bool,
    /// Name of each copy amishare makes of these images. `{name}` is the source image's
    /// name, `{id}` its id, `{region}` the copy's region and `{key}` the key's logical
    /// name or id. Default: `{name}-{key}`.
    #[serde(default)]
    pub copy_name: Option<String>,
    /// Copies of the images in other regions, each shared like the images themselves.
    #[serde(default)]
    pub replicas: Vec<RawReplica>,
    /// Principals the images are shared with.
    #[serde(default)]
    pub share_with: Vec<RawShare>,
}

/// A selection of the account's own images in the region.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawSelect {
    /// Image name pattern; `*` matches any characters and `?` one (EC2 `name` filter).
    #[serde(default)]
    pub name: Option<String>,
    /// Tags every selected image has, as `KEY: VALUE`.
    #[serde(default, deserialize_with = "unique_tags")]
    pub tags: BTreeMap<String, String>,
    /// Keep only the N most recently created of the matching images.
    #[serde(default)]
    pub newest: Option<u32>,
    /// Fail the plan when nothing matches. Off by default, when that is a warning.
    #[serde(default)]
    pub must_match: bool,
}

/// A copy of an image group in another region of the same account.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawReplica {
    /// The replica's region.
    pub region: String,
    /// Logical name of a key (from `keys`) in that region to encrypt the replica under.
    pub key: String,
}

/// One principal an image is shared with. Set exactly one of `account`, `organization`,
/// `ou` and `group`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawShare {
    /// An account: a logical name from `accounts` or a 12-digit id.
    #[serde(default)]
    #[schemars(schema_with = "account_reference_schema")]
    pub account: Option<String>,
    /// An organization ARN: `arn:aws:organizations::MANAGEMENT_ACCOUNT:organization/o-ID`.
    #[serde(default)]
    pub organization: Option<String>,
    /// An organizational unit ARN:
    /// `arn:aws:organizations::MANAGEMENT_ACCOUNT:ou/o-ID/ou-ROOT-ID`.
    #[serde(default)]
    pub ou: Option<String>,
    /// `all` makes the images public; needs `settings.allow_public`.
    #[serde(default)]
    pub group: Option<String>,
    /// Also let the account copy the images: createVolumePermission on every snapshot.
    /// Accounts only, because createVolumePermission takes account ids only.
    #[serde(default)]
    pub copy: bool,
    /// Share a copy encrypted under this key of the target account in place of the
    /// image: a key ARN (`arn:aws:kms:REGION:ACCOUNT_ID:key/KEY_ID`). The source account
    /// makes the copy, so the key's policy must let the source account use it.
    #[serde(default)]
    pub copy_under: Option<String>,
    /// The target keeps its own copy of the image under this key of its own account (a
    /// key ARN), made with the target's credentials, so the copy keeps working whatever
    /// happens to the source's key. The target account needs a `role_arn`.
    #[serde(default)]
    pub keep_copy_under: Option<String>,
}

/// Reads `select.tags`, rejecting a tag key written twice: a plain map would silently keep
/// only the last of its values.
fn unique_tags<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct Tags;

    impl<'de> Visitor<'de> for Tags {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping of tag keys to values")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut tags = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                if tags.contains_key(&key) {
                    return Err(de::Error::custom(format!("duplicate tag `{key}`")));
                }
                tags.insert(key, value);
            }
            Ok(tags)
        }
    }

    deserializer.deserialize_map(Tags)
}
