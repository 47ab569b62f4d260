//! Renders a plan for people. Renderers return the whole text; the CLI writes it.

mod text;

pub use text::{render_text, summary};
