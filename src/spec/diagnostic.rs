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
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
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
