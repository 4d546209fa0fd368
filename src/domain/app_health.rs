//! App-level incidents: when many connections of one app fail transiently in a sweep, the
//! provider is having trouble, not the connections. The app is then marked degraded, told once
//! to each team, checked only by a few probes until it answers again, and marked recovered.

use chrono::{DateTime, Utc};

/// Transient failures of one app in one sweep from which it may be degraded, when they are also
/// more than half of its checks in that sweep.
pub const DEGRADED_MIN_FAILURES: u32 = 20;
/// Connections of a degraded app checked per sweep, to notice when it recovers.
pub const DEGRADED_PROBES: u32 = 3;
/// How long the other connections of a degraded app wait before they are due again.
pub const DEGRADED_RECHECK_MINUTES: i64 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AppHealthStatus {
    Healthy,
    Degraded,
}

impl AppHealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AppHealthStatus::Healthy => "HEALTHY",
            AppHealthStatus::Degraded => "DEGRADED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [AppHealthStatus::Healthy, AppHealthStatus::Degraded].into_iter().find(|s| s.as_str() == raw)
    }
}

/// How an app's provider is doing. `since` is when the status last changed; a healthy app that
/// was never degraded has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppHealth {
    pub status: AppHealthStatus,
    pub since: Option<DateTime<Utc>>,
    /// The message of the last transient failure that led to (or kept) the degradation.
    pub last_error: Option<String>,
}

impl AppHealth {
    pub fn healthy() -> Self {
        AppHealth { status: AppHealthStatus::Healthy, since: None, last_error: None }
    }
}

/// What one sweep saw of one app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppTally {
    pub checked: u32,
    pub transient: u32,
    pub last_error: Option<String>,
}

impl AppTally {
    /// Many checks failed transiently, and most did: the provider is in trouble.
    pub fn degrades(&self) -> bool {
        self.transient >= DEGRADED_MIN_FAILURES && self.transient * 2 > self.checked
    }

    /// Most of the (probe) checks got an answer again.
    pub fn recovers(&self) -> bool {
        self.checked > 0 && self.transient * 2 < self.checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(checked: u32, transient: u32) -> AppTally {
        AppTally { checked, transient, last_error: None }
    }

    #[test]
    fn an_app_degrades_on_many_failures_that_are_most_checks() {
        assert!(tally(20, 20).degrades());
        assert!(tally(39, 20).degrades());
        assert!(!tally(40, 20).degrades(), "half is not most");
        assert!(!tally(19, 19).degrades(), "a few connections are not an incident");
    }

    #[test]
    fn an_app_recovers_when_most_probes_answer() {
        assert!(tally(1, 0).recovers());
        assert!(tally(3, 1).recovers());
        assert!(!tally(3, 2).recovers());
        assert!(!tally(0, 0).recovers(), "nothing checked says nothing");
    }
}
