//! Progress of long waits on stderr: a bar on a terminal, plain lines otherwise. This is
//! part of the output layer, like the CLI.
#![allow(clippy::print_stderr)]

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::apply::CopyProgress;

/// Shows the progress of copies: a spinner with counts on a terminal, one line per event
/// otherwise, so CI logs read as a record.
pub struct CopyDisplay {
    bar: Option<ProgressBar>,
}

impl CopyDisplay {
    /// Creates a display for `total` copies.
    pub fn new(total: usize) -> Self {
        if !std::io::stderr().is_terminal() || total == 0 {
            return CopyDisplay { bar: None };
        }
        let bar = ProgressBar::new(total as u64);
        let style =
            ProgressStyle::with_template("{spinner} copies {pos}/{len} done, {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        CopyDisplay { bar: Some(bar) }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl CopyProgress for CopyDisplay {
    fn started(&self, copy: &str, resumed: bool) {
        let how = if resumed {
            "already pending from an earlier run"
        } else {
            "started"
        };
        match &self.bar {
            Some(bar) => bar.set_message(format!("waiting for {copy}")),
            None => eprintln!("copy {copy}: {how}, waiting until it is available"),
        }
    }

    fn finished(&self, copy: &str, outcome: &str) {
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.println(format!("copy {copy}: {outcome}"));
            }
            None => eprintln!("copy {copy}: {outcome}"),
        }
    }
}
