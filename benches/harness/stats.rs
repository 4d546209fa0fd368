//! Latency samples and their percentiles, and how figures are printed.

use std::time::Duration;

/// Samples in milliseconds. Percentiles are nearest-rank over the sorted samples.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    ms: Vec<f64>,
    sorted: bool,
}

impl Samples {
    pub fn push(&mut self, duration: Duration) {
        self.push_ms(duration.as_secs_f64() * 1e3);
    }

    pub fn push_ms(&mut self, ms: f64) {
        self.ms.push(ms);
        self.sorted = false;
    }

    pub fn extend(&mut self, other: Samples) {
        self.ms.extend(other.ms);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.ms.len()
    }

    /// The `p`th percentile (0-100) in milliseconds; NaN without samples.
    pub fn percentile(&mut self, p: f64) -> f64 {
        if self.ms.is_empty() {
            return f64::NAN;
        }
        if !self.sorted {
            self.ms.sort_by(f64::total_cmp);
            self.sorted = true;
        }
        let rank = ((p / 100.0) * self.ms.len() as f64).ceil() as usize;
        self.ms[rank.clamp(1, self.ms.len()) - 1]
    }

    pub fn p50(&mut self) -> f64 {
        self.percentile(50.0)
    }

    pub fn p99(&mut self) -> f64 {
        self.percentile(99.0)
    }

    pub fn max(&mut self) -> f64 {
        self.percentile(100.0)
    }

    /// `p50 .. p99 .. max ..`, for a detail line.
    pub fn describe(&mut self) -> String {
        format!("p50 {} p99 {} max {}", ms(self.p50()), ms(self.p99()), ms(self.max()))
    }
}

/// A duration in milliseconds with two or three significant digits: `0.42 ms`, `9.1 ms`, `21 ms`.
pub fn ms(value: f64) -> String {
    match value.abs() {
        v if v < 1.0 => format!("{value:.2} ms"),
        v if v < 10.0 => format!("{value:.1} ms"),
        _ => format!("{value:.0} ms"),
    }
}

/// A duration in seconds: `0.84 s`, `12.3 s`.
pub fn secs(duration: Duration) -> String {
    let value = duration.as_secs_f64();
    if value < 1.0 { format!("{value:.2} s") } else { format!("{value:.1} s") }
}

/// Bytes as megabytes (MiB), as `free` and `/proc` think of them.
pub fn mib(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / (1024.0 * 1024.0))
}
