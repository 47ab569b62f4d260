//! Problems found in a spec, reported as values so one run can list all of them.

use std::fmt;
use std::path::PathBuf;

/// One problem in a spec file: where it is, what is wrong, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable kebab-case identifier of the kind of problem, such as `invalid-account-id`.
    pub code: &'static str,
    /// The spec file the problem is in.
    pub file: PathBuf,
    /// Field path inside the file, such as `images[1].share_with[0].account`; empty for
    /// the whole file.
    pub path: String,
    /// What is wrong, naming the offending value.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub(crate) fn new(
        code: &'static str,
        file: impl Into<PathBuf>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            file: file.into(),
            path: path.into(),
            message: shorten_quoted(message.into()),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(shorten_quoted(hint.into()));
        self
    }
}

/// Maximum characters of a quoted value shown in a message. A longer value is cut to this
/// many, so that one huge value in a spec does not flood the output.
const MAX_QUOTED_CHARS: usize = 100;

/// Cuts each value quoted in backticks in `text` to [`MAX_QUOTED_CHARS`] characters,
/// followed by its full length.
fn shorten_quoted(text: String) -> String {
    if text.chars().count() <= MAX_QUOTED_CHARS {
        return text;
    }
    let mut shortened = String::with_capacity(text.len().min(1024));
    // Every odd-numbered piece between backticks is a quoted value.
    for (i, piece) in text.split('`').enumerate() {
        if i > 0 {
            shortened.push('`');
        }
        let count = piece.chars().count();
        if i % 2 == 1 && count > MAX_QUOTED_CHARS {
            shortened.extend(piece.chars().take(MAX_QUOTED_CHARS));
            shortened.push_str(&format!("… ({count} characters)"));
        } else {
            shortened.push_str(piece);
        }
    }
    shortened
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_quoted_value_is_cut() {
        let long = "é".repeat(500);
        let diagnostic = Diagnostic::new(
            "x",
            "spec.yaml",
            "accounts[0].name",
            format!("invalid name `{long}`: too long"),
        )
        .hint(format!("rename `{long}`"));
        let expected = format!(
            "invalid name `{}… (500 characters)`: too long",
            "é".repeat(100)
        );
        assert_eq!(diagnostic.message, expected);
        assert!(
            diagnostic
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("(500 characters)"))
        );
        let short = Diagnostic::new("x", "spec.yaml", "", "invalid name `prod`");
        assert_eq!(short.message, "invalid name `prod`");
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {} [{}]", self.message, self.code)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found while loading and validating a set of spec files.
#[derive(Debug, thiserror::Error)]
#[error("{} problem{} in the spec", .0.len(), if .0.len() == 1 { "" } else { "s" })]
pub struct Diagnostics(pub Vec<Diagnostic>);
