//! Rate-limit counters shared by every gateway replica, in Redis. Each limit is a GCRA
//! counter (the same algorithm as the in-memory one): one key holding the theoretical arrival
//! time of the next request, in microseconds of the Redis server's clock, so replicas with
//! skewed clocks still agree. One Lua script checks all of a request's limits and counts it
//! against them only if every one lets it through, in one round trip.
//!
//! Keys are `loyalty:rl:{<tenant>}:key:<subject>` and `loyalty:rl:{<tenant>}:tenant`: the
//! tenant in braces is a Redis Cluster hash tag, so a request's keys share a slot. The client
//! speaks to one Redis server (with replicas behind it if wanted); Redis Cluster is not
//! supported yet.
//!
//! When Redis does not answer within `redis_timeout_ms` (or is down), the request is let
//! through uncounted and `gateway_rate_limit_unavailable_total` counts it: rate limits protect
//! the platform from floods, and a till must not stop selling because Redis is away.

use crate::limits::{Check, RateLimitConfig, RateLimits, Scope};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// KEYS: one counter per limit. ARGV: per key, the emission interval and the burst
/// tolerance, in microseconds. Returns `{0, 0}` when admitted (and counted), or `{i, wait}`:
/// the first limit (1-based) the request exceeds and the microseconds until it would pass.
const GCRA: &str = r#"
-- Redis before 7 replicates a script verbatim unless told otherwise, which TIME forbids.
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local next_tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local next_tat = tat + interval
  if next_tat - now > tolerance then
    return {i, math.ceil(next_tat - now - tolerance)}
  end
  next_tats[i] = next_tat
end
for i, key in ipairs(KEYS) do
  local ttl_ms = math.ceil((next_tats[i] - now) / 1000) + 1
  redis.call('SET', key, string.format('%.0f', next_tats[i]), 'PX', ttl_ms)
end
return {0, 0}
"#;

pub struct RedisRateLimits {
    connection: ConnectionManager,
    script: redis::Script,
    config: RateLimitConfig,
    timeout: Duration,
}

impl RedisRateLimits {
    /// Connects to `config.redis_url`; fails if Redis cannot be reached now (later outages
    /// are survived: the connection is re-established in the background).
    pub async fn connect(config: &RateLimitConfig) -> Result<Self, String> {
        let url = config
            .redis_url
            .as_deref()
            .ok_or("gateway.rate_limits.redis_url is not set")?;
        let client = redis::Client::open(url)
            .map_err(|e| format!("gateway.rate_limits.redis_url {url:?} is not valid: {e}"))?;
        let timeout = Duration::from_millis(config.redis_timeout_ms.max(1));
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(timeout)
            // Few attempts per reconnection: a request that finds Redis away must not wait
            // for it (the next failed request starts another reconnection).
            .set_number_of_retries(2)
            .set_max_delay(1_000);
        let connection = ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(|e| {
                format!(
                    "cannot reach Redis at {url} for the rate limits ({e}); start it, or unset \
                     gateway.rate_limits.redis_url to count in this process"
                )
            })?;
        let limits = Self {
            connection,
            script: redis::Script::new(GCRA),
            config: config.clone(),
            timeout,
        };
        // The script must run here, or every request would pass uncounted: a server that
        // cannot run it (too old, or a cluster node owning another slot) is found at start.
        let mut probe = limits.script.prepare_invoke();
        probe.key("loyalty:rl:{probe}:start").arg(1.0).arg(1.0);
        let mut connection = limits.connection.clone();
        probe
            .invoke_async::<(usize, u64)>(&mut connection)
            .await
            .map_err(|e| {
                format!("Redis at {url} cannot run the rate-limit script ({e}); use Redis 5 or later, not a cluster")
            })?;
        tokio::spawn(watch_connection(limits.connection.clone(), timeout));
        Ok(limits)
    }

    /// Requests per second allowed in `scope`; 0 for no limit.
    fn rate(&self, scope: Scope) -> u32 {
        match scope {
            Scope::ApiKey => self.config.per_api_key,
            Scope::Tenant => self.config.per_tenant,
        }
    }
}

/// The counter's key of one limit.
pub fn counter_key(tenant: &str, scope: Scope, subject: &str) -> String {
    match scope {
        Scope::ApiKey => format!("loyalty:rl:{{{tenant}}}:key:{subject}"),
        Scope::Tenant => format!("loyalty:rl:{{{tenant}}}:tenant"),
    }
}

#[async_trait]
impl RateLimits for RedisRateLimits {
    async fn admit(&self, tenant: &str, checks: &[Check<'_>]) -> Result<(), (Scope, Duration)> {
        let limited: Vec<(Scope, &str, u32)> = checks
            .iter()
            .map(|&(scope, subject)| (scope, subject, self.rate(scope)))
            .filter(|&(_, _, rate)| rate > 0)
            .collect();
        if limited.is_empty() {
            return Ok(());
        }
        let mut invocation = self.script.prepare_invoke();
        for &(scope, subject, rate) in &limited {
            // A burst of one second's worth, as in memory: `rate` requests at once.
            let interval = 1_000_000.0 / f64::from(rate);
            let tolerance = interval * f64::from(rate);
            invocation
                .key(counter_key(tenant, scope, subject))
                .arg(interval)
                .arg(tolerance);
        }
        let mut connection = self.connection.clone();
        let answer = tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<(usize, u64)>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok((0, _))) => Ok(()),
            Ok(Ok((over, wait_us))) => {
                let scope = limited.get(over - 1).map_or(Scope::Tenant, |l| l.0);
                Err((scope, Duration::from_micros(wait_us)))
            }
            Ok(Err(e)) => {
                unavailable(&e.to_string());
                Ok(())
            }
            Err(_) => {
                unavailable("no answer in time");
                Ok(())
            }
        }
    }
}

/// How often the connection's state (`redis_connected`) is checked when no request asks.
const CONNECTION_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Keeps `redis_connected` (1 or 0) current with a PING every few seconds, for the alert on a
/// gateway that counts nothing; the connection manager reconnects on the next command.
async fn watch_connection(mut connection: ConnectionManager, timeout: Duration) {
    loop {
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        let up = matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(_)));
        metrics::gauge!("redis_connected").set(f64::from(u8::from(up)));
        tokio::time::sleep(CONNECTION_CHECK_EVERY).await;
    }
}

/// Lets a request through uncounted, and says so (in the log at most once a second).
fn unavailable(why: &str) {
    metrics::gauge!("redis_connected").set(0.0);
    static LAST_WARNED_SEC: AtomicU64 = AtomicU64::new(0);
    metrics::counter!("gateway_rate_limit_unavailable_total").increment(1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if LAST_WARNED_SEC.swap(now, Ordering::Relaxed) != now {
        tracing::warn!(
            why,
            "Redis did not count requests for the rate limits; let through"
        );
    }
}
