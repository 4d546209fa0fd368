//! What every scenario shares: the scale of a run, the real service on port 0, a local provider,
//! rows seeded straight into the store, percentiles, and figures about this process.

pub mod app;
pub mod process;
pub mod provider;
pub mod seed;
pub mod stats;

use std::fmt;

/// How big a run is: the sizes, or ten times fewer with `--quick`.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub quick: bool,
}

impl Scale {
    /// `full` items, or a tenth of them in a quick run.
    pub fn items(self, full: usize) -> usize {
        if self.quick { full / 10 } else { full }
    }
}

/// The one line a scenario ends with, and whether it met its target.
#[derive(Debug, Clone)]
pub struct Summary {
    pub line: String,
    pub met: bool,
}

impl Summary {
    pub fn new(line: impl Into<String>, met: bool) -> Self {
        Summary { line: line.into(), met }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.line, if self.met { "MET" } else { "MISSED" })
    }
}
