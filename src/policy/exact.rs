//! Checks that a policy text can be parsed and written back without changing the meaning
//! of any statement. serde_json keeps the last of two fields with one name, and reads a
//! number that is not a 64-bit integer as an `f64`, so such a policy would come back from
//! a rewrite with a statement silently changed.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::PolicyError;

/// Rejects a policy text with a repeated field in one object, or with a number that
/// serde_json would not write back as written.
pub(super) fn check(text: &str) -> Result<(), PolicyError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    match Unique::deserialize(&mut deserializer) {
        Err(err) if !err.is_syntax() && !err.is_eof() => {
            return Err(PolicyError::DuplicateField(err.to_string()));
        }
        // Syntax errors are reported by the parse that follows.
        _ => {}
    }
    match inexact_number(text) {
        Some(number) => Err(PolicyError::InexactNumber(number.to_owned())),
        None => Ok(()),
    }
}

/// A JSON value whose objects have no repeated field; nothing of it is kept.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(field) = map.next_key::<String>()? {
            if !seen.insert(field.clone()) {
                return Err(de::Error::custom(format!(
                    "key policy has the field `{field}` twice in one object"
                )));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}

/// Finds the first number in `text`, outside strings, that serde_json does not write back
/// exactly as written: anything but a plain integer within the range of `i64` or `u64`.
fn inexact_number(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if byte == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if byte == b'-' || byte.is_ascii_digit() {
            let end = bytes[i..]
                .iter()
                .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                .map_or(bytes.len(), |n| i + n);
            let number = &text[i..end];
            let exact = number.parse::<i64>().is_ok() || number.parse::<u64>().is_ok();
            if !exact {
                return Some(number);
            }
            i = end;
            continue;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_field_is_rejected() {
        let text = r#"{"Statement": [{"Effect": "Deny", "Effect": "Allow"}]}"#;
        let err = check(text).expect_err("a repeated field");
        assert!(err.to_string().contains("`Effect` twice"), "{err}");
        // The same name in two objects is fine.
        assert!(check(r#"{"Statement": [{"Effect": "Deny"}, {"Effect": "Allow"}]}"#).is_ok());
    }

    #[test]
    fn numbers_that_change_when_written_back_are_rejected() {
        for number in ["1.50", "123456789012345678901234567890", "1e3", "-0.5"] {
            let text = format!(r#"{{"Condition": {{"NumericLessThan": {{"k": {number}}}}}}}"#);
            let err = check(&text).expect_err(number);
            assert!(err.to_string().contains(number), "{err}");
        }
        for number in ["0", "42", "-7", "18446744073709551615"] {
            let text = format!(r#"{{"Version": "2012-10-17", "n": {number}}}"#);
            assert!(check(&text).is_ok(), "{number}");
        }
    }

    #[test]
    fn digits_inside_strings_are_not_numbers() {
        let text =
            r#"{"Sid": "x \" 1.50", "Resource": "arn:aws:kms:us-east-1:111111111111:key/1e3"}"#;
        assert!(check(text).is_ok());
    }
}
