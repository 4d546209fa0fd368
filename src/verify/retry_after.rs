//! A provider's `Retry-After` (RFC 9110 §10.2.3): seconds, or an HTTP date. GitHub, Slack and
//! Microsoft Graph send it with 429 and 503 (GitHub also with a 403 for a secondary limit) and
//! ask integrations to keep to it; GitHub may ban one that does not.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Longer than any provider asks in earnest: a value past it is read as this.
pub const LONGEST: Duration = Duration::from_secs(24 * 3600);

/// How long the answer with `headers`, received at `now`, asks the caller to wait; `None`
/// without a readable `Retry-After`. A date in the past asks for no wait.
pub fn asked(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(LONGEST));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO).min(LONGEST))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn seconds_and_dates_are_read_and_bounded() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T08:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(asked(&with("120"), now), Some(Duration::from_secs(120)));
        assert_eq!(asked(&with(" 7 "), now), Some(Duration::from_secs(7)));
        assert_eq!(asked(&with("Wed, 02 Dec 2026 08:05:00 GMT"), now), Some(Duration::from_secs(300)));
        assert_eq!(asked(&with("Wed, 02 Dec 2026 07:00:00 GMT"), now), Some(Duration::ZERO), "already past");
        assert_eq!(asked(&with("99999999999"), now), Some(LONGEST));
        assert_eq!(asked(&with("soon"), now), None);
        assert_eq!(asked(&with("-5"), now), None);
        assert_eq!(asked(&HeaderMap::new(), now), None);
    }
}
