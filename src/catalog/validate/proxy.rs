//! `[[modules]].requests` and `[rate_limits]`: what the proxy lets a module do, and how fast.

use std::time::Duration;

use super::Check;
use crate::catalog::proxy_rules::{METHODS, PathPattern, RateLimit, RateLimits, RequestRule};
use crate::catalog::raw::{RawRateLimit, RawRateLimits, RawRequestRule};
use crate::catalog::types::AppModule;

/// Longest period a limit may name: a day.
const MAX_PERIOD_SECS: u32 = 86_400;

impl Check<'_> {
    pub(super) fn module_requests(&mut self, at: &str, raw: Vec<RawRequestRule>) -> Vec<RequestRule> {
        let mut rules = Vec::with_capacity(raw.len());
        for (index, rule) in raw.into_iter().enumerate() {
            let at = format!("{at}[{index}]");
            let method = rule.method.to_ascii_uppercase();
            if !METHODS.contains(&method.as_str()) {
                self.fail(
                    format!("{at}.method"),
                    format!("`{}` is not one of {}", rule.method, METHODS.join(", ")),
                );
                continue;
            }
            match PathPattern::parse(&rule.path) {
                Ok(path) => rules.push(RequestRule { method, path }),
                Err(message) => self.fail(format!("{at}.path"), message),
            }
        }
        rules
    }

    pub(super) fn rate_limits(&mut self, raw: Option<RawRateLimits>) -> RateLimits {
        let Some(raw) = raw else { return RateLimits::default() };
        RateLimits {
            per_connection: raw.per_connection.and_then(|r| self.rate_limit("rate_limits.per_connection", r)),
            per_app: raw.per_app.and_then(|r| self.rate_limit("rate_limits.per_app", r)),
        }
    }

    fn rate_limit(&mut self, at: &str, raw: RawRateLimit) -> Option<RateLimit> {
        if raw.requests == 0 {
            self.fail(format!("{at}.requests"), "must be at least 1");
            return None;
        }
        if raw.per_secs == 0 || raw.per_secs > MAX_PERIOD_SECS {
            self.fail(format!("{at}.per_secs"), format!("must be 1 to {MAX_PERIOD_SECS} seconds"));
            return None;
        }
        Some(RateLimit { requests: raw.requests, period: Duration::from_secs(u64::from(raw.per_secs)) })
    }
}

/// Every app has the generic module; a file may define its own under the same key instead.
pub(super) fn with_generic_module(mut modules: Vec<AppModule>) -> Vec<AppModule> {
    if modules.iter().all(|module| module.key != crate::catalog::GENERIC_MODULE_KEY) {
        modules.push(AppModule::generic());
    }
    modules
}
