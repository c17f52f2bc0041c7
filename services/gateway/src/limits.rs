//! Rate limits per API key and per tenant. The port is [`RateLimits`]; the embedded default
//! keeps the counters in memory (GCRA, `governor`), so one process enforces them exactly.
//! With `gateway.rate_limits.redis_url` set, every gateway replica shares the counters in
//! Redis instead ([`crate::limits_redis`]).

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// `[gateway.rate_limits]`: requests per second, with bursts of one second's worth. 0 turns a
/// limit off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    /// Each partner system's API key.
    pub per_api_key: u32,
    /// Everything a tenant's staff and keys send together.
    pub per_tenant: u32,
    /// `redis://host:6379/0` (or `rediss://` for TLS): counters shared by every gateway
    /// replica. Unset: counters in this process.
    pub redis_url: Option<String>,
    /// How long a request waits for Redis before it is let through uncounted.
    pub redis_timeout_ms: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_api_key: 1_000,
            per_tenant: 10_000,
            redis_url: None,
            redis_timeout_ms: 50,
        }
    }
}

/// Which counter a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    ApiKey,
    Tenant,
}

/// One limit a request counts against: its scope, and the API key's subject or the tenant.
pub type Check<'a> = (Scope, &'a str);

/// The port: count one request against every limit it falls under.
#[async_trait]
pub trait RateLimits: Send + Sync + 'static {
    /// Counts the request of `tenant` against each of `checks`: Ok, or the first limit it
    /// exceeds and how long to wait before the next request can pass.
    async fn admit(&self, tenant: &str, checks: &[Check<'_>]) -> Result<(), (Scope, Duration)>;
}

/// The configured counters: shared in Redis when `redis_url` is set, else in this process.
pub async fn rate_limits(config: &RateLimitConfig) -> Result<Arc<dyn RateLimits>, String> {
    if config.redis_url.is_some() {
        let redis = crate::limits_redis::RedisRateLimits::connect(config).await?;
        return Ok(Arc::new(redis));
    }
    Ok(Arc::new(MemoryRateLimits::new(config)))
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
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            per_api_key: limiter(config.per_api_key),
            per_tenant: limiter(config.per_tenant),
            clock: DefaultClock::default(),
        }
    }
}

impl MemoryRateLimits {
    fn admit_one(&self, scope: Scope, key: &str) -> Result<(), Duration> {
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

#[async_trait]
impl RateLimits for MemoryRateLimits {
    async fn admit(&self, _tenant: &str, checks: &[Check<'_>]) -> Result<(), (Scope, Duration)> {
        for &(scope, key) in checks {
            self.admit_one(scope, key).map_err(|wait| (scope, wait))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rest_waits_and_keys_are_counted_apart() {
        let limits = MemoryRateLimits::new(&RateLimitConfig {
            per_api_key: 5,
            per_tenant: 0,
            ..RateLimitConfig::default()
        });
        for _ in 0..5 {
            assert!(limits.admit_one(Scope::ApiKey, "key:a").is_ok());
        }
        let wait = limits.admit_one(Scope::ApiKey, "key:a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
        assert!(
            limits.admit_one(Scope::ApiKey, "key:b").is_ok(),
            "another key"
        );
        for _ in 0..100 {
            assert!(
                limits.admit_one(Scope::Tenant, "acme").is_ok(),
                "0 turns it off"
            );
        }
    }
}
