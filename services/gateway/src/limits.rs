//! Rate limits per API key and per tenant. The port is [`RateLimits`]; the embedded default
//! keeps the counters in memory (GCRA, `governor`), so one process enforces them exactly. A
//! distributed set-up shares counters in Redis instead.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;
use std::time::Duration;

/// `[gateway.rate_limits]`: requests per second, with bursts of one second's worth. 0 turns a
/// limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    /// Each partner system's API key.
    pub per_api_key: u32,
    /// Everything a tenant's staff and keys send together.
    pub per_tenant: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_api_key: 1_000,
            per_tenant: 10_000,
        }
    }
}

/// Which counter a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    ApiKey,
    Tenant,
}

/// The port: admit or refuse one request for `key` in `scope`.
pub trait RateLimits: Send + Sync + 'static {
    /// Ok, or how long to wait before the next request can pass.
    fn admit(&self, scope: Scope, key: &str) -> Result<(), Duration>;
}

/// Counters in this process.
pub struct MemoryRateLimits {
    per_api_key: Option<DefaultKeyedRateLimiter<String>>,
    per_tenant: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

fn limiter(per_sec: u32) -> Option<DefaultKeyedRateLimiter<String>> {
    NonZeroU32::new(per_sec).map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_second(n)))
}

impl MemoryRateLimits {
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            per_api_key: limiter(config.per_api_key),
            per_tenant: limiter(config.per_tenant),
            clock: DefaultClock::default(),
        }
    }
}

impl RateLimits for MemoryRateLimits {
    fn admit(&self, scope: Scope, key: &str) -> Result<(), Duration> {
        let limiter = match scope {
            Scope::ApiKey => &self.per_api_key,
            Scope::Tenant => &self.per_tenant,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        // A key's state stays allocated while it is used; keys idle for long are dropped
        // by `retain_recent` below on the slow path.
        limiter.check_key(&key.to_string()).map_err(|not_until| {
            if limiter.len() > 100_000 {
                limiter.retain_recent();
            }
            not_until.wait_time_from(self.clock.now())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rest_waits_and_keys_are_counted_apart() {
        let limits = MemoryRateLimits::new(RateLimitConfig {
            per_api_key: 5,
            per_tenant: 0,
        });
        for _ in 0..5 {
            assert!(limits.admit(Scope::ApiKey, "key:a").is_ok());
        }
        let wait = limits.admit(Scope::ApiKey, "key:a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
        assert!(limits.admit(Scope::ApiKey, "key:b").is_ok(), "another key");
        for _ in 0..100 {
            assert!(
                limits.admit(Scope::Tenant, "acme").is_ok(),
                "0 turns it off"
            );
        }
    }
}
