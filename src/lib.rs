//! amishare shares KMS-encrypted AMIs across AWS accounts from a declarative spec.
//!
//! The pipeline, one module per stage: [`spec`] (load and validate) -> [`observe`] (read
//! live state through [`aws`]) -> [`plan`] (diff) -> [`render`] -> [`apply`].

pub mod apply;
pub mod aws;
pub mod cli;
pub mod copies;
pub mod model;
pub mod observe;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod render;
pub mod saved;
pub mod spec;
