//! How a connection's checks have been going, and when to check it next. Successes wait the
//! full interval (with jitter, so connections created together spread out); provider outages
//! retry within minutes with exponential backoff; rejected credentials wait the full interval,
//! since only a person can fix them.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::VerificationOutcome;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// When the scheduler checks next; none only while the connection waits for consent, when
    /// it is never checked.
    pub next_check_at: Option<DateTime<Utc>>,
    /// Checks in a row that did not pass.
    pub consecutive_failures: i32,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct SchedulePolicy {
    /// Between two checks of a healthy connection (default 24 hours).
    pub interval: Duration,
    /// The first retry after a provider outage; doubles each time.
    pub retry_base: Duration,
    /// The longest wait between retries after outages.
    pub retry_max: Duration,
}

impl Default for SchedulePolicy {
    fn default() -> Self {
        SchedulePolicy {
            interval: Duration::from_secs(24 * 3600),
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
        }
    }
}

impl SchedulePolicy {
    /// The health after a check with `outcome` finishing at `now`. `jitter` in [0, 1) spreads
    /// the next check over ±10% of the interval; `attention_at`, when sooner, brings it forward
    /// (see `next_grant_attention`). A provider that could not answer and `asked` for a wait
    /// (its `Retry-After`) is not asked again sooner, nor later than a healthy connection would be.
    pub fn after_check(
        &self,
        before: &Health,
        outcome: VerificationOutcome,
        now: DateTime<Utc>,
        jitter: f64,
        attention_at: Option<DateTime<Utc>>,
        asked: Option<Duration>,
    ) -> Health {
        let (failures, success_at, failure_at, wait) = match outcome {
            VerificationOutcome::Ok => (0, Some(now), before.last_failure_at, self.jittered_interval(jitter)),
            VerificationOutcome::ProviderUnavailable => {
                let failures = before.consecutive_failures.saturating_add(1);
                let backoff = self.retry_after(failures);
                let wait = asked.map_or(backoff, |asked| backoff.max(asked.min(self.interval)));
                (failures, before.last_success_at, Some(now), wait)
            }
            _ => (
                before.consecutive_failures.saturating_add(1),
                before.last_success_at,
                Some(now),
                self.jittered_interval(jitter),
            ),
        };
        let mut next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(24));
        // Something due sooner (a grant about to end) is looked at when it is due.
        if let Some(attention_at) = attention_at.filter(|e| *e > now && *e < next) {
            next = attention_at;
        }
        Health {
            next_check_at: Some(next),
            consecutive_failures: failures,
            last_success_at: success_at,
            last_failure_at: failure_at,
        }
    }

    /// The first check of credentials that were not checked when stored.
    pub fn first_check(&self, now: DateTime<Utc>) -> Health {
        Health { next_check_at: Some(now), ..Health::default() }
    }

    fn jittered_interval(&self, jitter: f64) -> Duration {
        let factor = 0.9 + 0.2 * jitter.clamp(0.0, 1.0);
        self.interval.mul_f64(factor)
    }

    fn retry_after(&self, failures: i32) -> Duration {
        let exponent = u32::try_from(failures.saturating_sub(1)).unwrap_or(0).min(16);
        self.retry_base.saturating_mul(2u32.saturating_pow(exponent)).min(self.retry_max)
    }
}

/// How long before a grant ends its connection is warned about, soonest last.
pub const GRANT_WARNINGS: [chrono::TimeDelta; 2] = [chrono::TimeDelta::days(7), chrono::TimeDelta::days(1)];

/// The next moment after `now` a connection whose grant ends at `grant_expires_at` needs a look
/// whatever its check interval: each warning point before the end, then the end itself. An
/// access token's expiry is no such moment: idle connections are not refreshed on a clock.
pub fn next_grant_attention(
    grant_expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let ends = grant_expires_at?;
    GRANT_WARNINGS
        .iter()
        .filter_map(|ahead| ends.checked_sub_signed(*ahead))
        .chain([ends])
        .filter(|at| *at > now)
        .min()
}

/// Which warning a grant ending at `ends` is due at `now`: the days ahead of the nearest
/// warning point passed, or `None` before the first (or once the grant has ended).
pub fn grant_warning_due(ends: DateTime<Utc>, now: DateTime<Utc>) -> Option<i64> {
    if ends <= now {
        return None;
    }
    GRANT_WARNINGS.iter().rev().find(|ahead| ends - **ahead <= now).map(|ahead| ahead.num_days())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_grant_is_looked_at_a_week_and_a_day_before_it_ends() {
        let ends = at(0) + chrono::Duration::days(30);
        assert_eq!(next_grant_attention(Some(ends), at(0)), Some(ends - chrono::Duration::days(7)));
        let week_before = ends - chrono::Duration::days(7) + chrono::Duration::minutes(1);
        assert_eq!(next_grant_attention(Some(ends), week_before), Some(ends - chrono::Duration::days(1)));
        let day_before = ends - chrono::Duration::hours(23);
        assert_eq!(next_grant_attention(Some(ends), day_before), Some(ends));
        assert_eq!(next_grant_attention(Some(ends), ends), None);
        assert_eq!(next_grant_attention(None, at(0)), None);
        assert_eq!(grant_warning_due(ends, at(0)), None);
        assert_eq!(grant_warning_due(ends, week_before), Some(7));
        assert_eq!(grant_warning_due(ends, day_before), Some(1));
        assert_eq!(grant_warning_due(ends, ends), None);
    }

    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + chrono::Duration::minutes(minutes)
    }

    #[test]
    fn outages_back_off_in_minutes_and_success_resets() {
        let policy = SchedulePolicy::default();
        let mut health = Health::default();
        let mut waits = Vec::new();
        for _ in 0..8 {
            health =
                policy.after_check(&health, VerificationOutcome::ProviderUnavailable, at(0), 0.5, None, None);
            waits.push((health.next_check_at.unwrap() - at(0)).num_minutes());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(health.consecutive_failures, 8);
        let healthy = policy.after_check(&health, VerificationOutcome::Ok, at(5), 0.5, None, None);
        assert_eq!(healthy.consecutive_failures, 0);
        assert_eq!(healthy.last_success_at, Some(at(5)));
        assert_eq!(healthy.last_failure_at, Some(at(0)), "the last failure is remembered");
        assert_eq!((healthy.next_check_at.unwrap() - at(5)).num_hours(), 24);
    }

    #[test]
    fn a_providers_retry_after_is_kept_within_the_interval() {
        let policy = SchedulePolicy::default();
        let unavailable = VerificationOutcome::ProviderUnavailable;
        let asked = |wait: u64| Some(Duration::from_secs(wait));
        let wait = |health: Health| (health.next_check_at.unwrap() - at(0)).num_minutes();
        // Longer than the first backoff (1 minute): the provider's wait.
        assert_eq!(
            wait(policy.after_check(&Health::default(), unavailable, at(0), 0.5, None, asked(600))),
            10
        );
        // Shorter: the backoff.
        assert_eq!(wait(policy.after_check(&Health::default(), unavailable, at(0), 0.5, None, asked(5))), 1);
        // Never later than a healthy connection's next check.
        assert_eq!(
            wait(policy.after_check(&Health::default(), unavailable, at(0), 0.5, None, asked(9 * 86400))),
            1440
        );
        // Only an outage is held to it.
        let ok =
            policy.after_check(&Health::default(), VerificationOutcome::Ok, at(0), 0.5, None, asked(600));
        assert_eq!(wait(ok), 1440);
    }

    #[test]
    fn jitter_spreads_checks_within_ten_percent() {
        let policy = SchedulePolicy::default();
        let low = policy.after_check(&Health::default(), VerificationOutcome::Ok, at(0), 0.0, None, None);
        let high = policy.after_check(&Health::default(), VerificationOutcome::Ok, at(0), 0.999, None, None);
        assert_eq!((low.next_check_at.unwrap() - at(0)).num_minutes(), 1296);
        assert_eq!((high.next_check_at.unwrap() - at(0)).num_minutes(), 1583);
    }

    #[test]
    fn a_token_expiring_sooner_brings_the_check_forward() {
        let policy = SchedulePolicy::default();
        let health =
            policy.after_check(&Health::default(), VerificationOutcome::Ok, at(0), 0.5, Some(at(50)), None);
        assert_eq!(health.next_check_at, Some(at(50)));
    }

    #[test]
    fn rejected_credentials_wait_the_full_interval() {
        let policy = SchedulePolicy::default();
        let health = policy.after_check(
            &Health::default(),
            VerificationOutcome::InvalidCredentials,
            at(0),
            0.5,
            None,
            None,
        );
        assert_eq!(health.consecutive_failures, 1);
        assert_eq!((health.next_check_at.unwrap() - at(0)).num_hours(), 24);
    }
}
