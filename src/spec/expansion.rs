//! Bounds how far anchors and aliases expand a spec, before serde builds any value from it.
//!
//! serde_yaml builds a fresh value for every alias of an anchored node. A file under the
//! size limit can therefore expand to gigabytes: a long string aliased thousands of times,
//! or aliases of aliases ("billion laughs"). serde_yaml's repetition limit stops only the
//! second kind. [`check`] walks the document with every alias expanded, keeps none of it,
//! and stops once the budget below is spent.

use std::cell::Cell;
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};

use super::diagnostic::Diagnostic;
use super::load::MAX_SPEC_BYTES;

/// Largest size a spec may expand to with every alias written out, where each node costs
/// its scalar's length plus [`NODE_COST`]. Written out, a node takes at least two bytes
/// of text (`a,` in a flow mapping is a key and a null value), so a spec of at most
/// [`MAX_SPEC_BYTES`] without aliases costs under 9 MiB. The rest is room for anchors that
/// reuse share lists.
pub const MAX_EXPANDED_BYTES: u64 = 16 * MAX_SPEC_BYTES;

/// Cost of one node on top of its text: a rough stand-in for the memory a deserialized
/// node takes, so many empty nodes are bounded as well as a few long ones.
const NODE_COST: u64 = 8;

/// Walks the spec with aliases expanded and returns a diagnostic when the expansion passes
/// [`MAX_EXPANDED_BYTES`], serde_yaml's repetition limit or its nesting limit. Other YAML
/// errors are left to the deserializer that builds the spec, which reports them with more
/// context. That pass is bounded too, because it reads no more of the document than this
/// walk did.
pub(super) fn check(file: &Path, text: &str) -> Result<(), Diagnostic> {
    let budget = Budget {
        remaining: Cell::new(MAX_EXPANDED_BYTES),
        exceeded: Cell::new(false),
    };
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let tracked = serde_path_to_error::Deserializer::new(deserializer, &mut track);
    let Err(err) = Walk(&budget).deserialize(tracked) else {
        return Ok(());
    };

    let message = err.to_string();
    let path = track.path().to_string();
    let path = if path == "." { String::new() } else { path };

    let hint = "alias fewer or smaller values; a spec that \
                expands this far is more likely a mistake than a real list of images";
    if budget.exceeded.get() {
        return Err(Diagnostic::new(
            "alias-expansion-too-large",
            file,
            path,
            format!(
                "anchors and aliases expand the spec past the limit of {MAX_EXPANDED_BYTES} bytes"
            ),
        )
        .hint(hint));
    }

    // serde_yaml's error kinds are private, so its two limits are recognized by message.
    if message.contains("repetition limit exceeded") {
        return Err(Diagnostic::new(
            "alias-expansion-too-large",
            file,
            path,
            "aliases are expanded more often than the YAML parser allows",
        )
        .hint(hint));
    }
    if message.contains("recursion limit exceeded") {
        return Err(Diagnostic::new(
            "invalid-yaml",
            file,
            path,
            format!("values are nested too deeply: {message}"),
        )
        .hint("nest values less deeply; a spec needs no more than six levels"));
    }
    Ok(())
}

struct Budget {
    remaining: Cell<u64>,
    exceeded: Cell<bool>,
}

impl Budget {
    fn spend<E: de::Error>(&self, text_len: usize) -> Result<(), E> {
        let cost = text_len as u64 + NODE_COST;
        match self.remaining.get().checked_sub(cost) {
            Some(left) => {
                self.remaining.set(left);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("alias expansion budget spent"))
            }
        }
    }
}

/// A seed and visitor that accepts any YAML node, spending its cost from the budget.
#[derive(Clone, Copy)]
struct Walk<'a>(&'a Budget);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.0.spend(value.len())
    }

    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<(), E> {
        self.0.spend(value.len())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.spend(0)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.spend(0)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    /// serde_yaml presents a node with a custom tag, such as `!Ref x`, as an enum.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Result<(), Diagnostic> {
        check(Path::new("t.yaml"), text)
    }

    #[test]
    fn spec_without_aliases_passes() {
        let text = include_str!("../../specs/example.yaml");
        assert!(check_text(text).is_ok());
    }

    #[test]
    fn densest_spec_under_size_limit_passes() {
        // A flow mapping of one-letter keys with null values: two nodes per two bytes.
        let keys = "a,".repeat(MAX_SPEC_BYTES as usize / 2 - 8);
        let text = format!("x: {{{keys}}}\n");
        assert!(text.len() as u64 <= MAX_SPEC_BYTES);
        let budget = Budget {
            remaining: Cell::new(MAX_EXPANDED_BYTES),
            exceeded: Cell::new(false),
        };
        let walked = Walk(&budget).deserialize(serde_yaml::Deserializer::from_str(&text));
        assert!(walked.is_ok());
        let spent = MAX_EXPANDED_BYTES - budget.remaining.get();
        assert!(spent < 9 * 1024 * 1024, "spent {spent}");
    }

    #[test]
    fn reused_share_list_passes() {
        let text = "version: 1\nx: &targets [{account: a}, {account: b}]\nimages:\n  - share_with: *targets\n  - share_with: *targets\n";
        assert!(check_text(text).is_ok());
    }

    #[test]
    fn long_string_aliased_often_is_rejected() {
        let long = "a".repeat(100_000);
        let aliases = vec!["*s"; 200].join(", ");
        let text = format!("version: 1\nimages:\n  - ids: [&s \"{long}\", {aliases}]\n");
        let problem = check_text(&text).unwrap_err();
        assert_eq!(problem.code, "alias-expansion-too-large");
        assert!(problem.path.starts_with("images[0].ids["), "{problem}");
        assert!(problem.message.contains("16777216 bytes"), "{problem}");
    }

    #[test]
    fn nested_aliases_are_rejected() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for level in 1..9 {
            let refs = vec![format!("*a{}", level - 1); 9].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
        }
        let problem = check_text(&text).unwrap_err();
        assert_eq!(problem.code, "alias-expansion-too-large");
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let text = format!("version: 1\nx: {}{}\n", "[".repeat(200), "]".repeat(200));
        let problem = check_text(&text).unwrap_err();
        assert_eq!(problem.code, "invalid-yaml");
        assert!(problem.message.contains("nested too deeply"), "{problem}");
    }

    #[test]
    fn custom_tags_are_walked() {
        assert!(check_text("version: 1\nx: !Ref [a, {b: c}]\n").is_ok());
    }

    #[test]
    fn syntax_errors_are_left_to_the_deserializer() {
        assert!(check_text("version: 1\naccounts:\n\t- x\n").is_ok());
    }
}
