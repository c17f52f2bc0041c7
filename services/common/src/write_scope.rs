//! What a write was accepted under in two regions (decision 0019): the epoch of its tenant's
//! home when the gateway routed it here, and the deadline by which it must have ended (inside
//! the region's lease). The gateway sets it around the write; it travels to services in other
//! processes as gRPC metadata (`x-home-epoch`, `grpc-timeout`), and each gRPC server sets it
//! again around the call. Stores read it: a conditional write refuses a partition a newer
//! epoch has written, and no statement is sent once the deadline has passed, so a write the
//! gateway has cut off cannot reach the database after the lease it ran under.
//!
//! Work with no scope (one region, background work, a task spawned without it) is bounded by
//! neither.

use crate::error::{ErrorCode, ServiceError, ServiceResult};
use std::time::Duration;
use tokio::time::Instant;

/// The metadata that carries the epoch between processes.
pub const EPOCH_HEADER: &str = "x-home-epoch";
/// gRPC's own deadline header: `<digits><unit>`, at most 8 digits.
pub const TIMEOUT_HEADER: &str = "grpc-timeout";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteScope {
    /// The epoch of the tenant's home the write was accepted under.
    pub epoch: Option<u64>,
    /// When the write must have ended.
    pub deadline: Option<Instant>,
}

tokio::task_local! {
    /// Set around a write accepted in a tenant's home region.
    pub static WRITE_SCOPE: WriteScope;
}

/// The scope of the write this task is running, if any.
pub fn current() -> Option<WriteScope> {
    WRITE_SCOPE.try_with(|scope| *scope).ok()
}

/// The epoch this task's write was accepted under, if any.
pub fn epoch() -> Option<u64> {
    current().and_then(|scope| scope.epoch)
}

/// Refuses to start `what` (a store statement) once this task's write is past its deadline:
/// the region's lease may have lapsed since, and the client has been told to retry.
pub fn check_deadline(what: &str) -> ServiceResult<()> {
    match current().and_then(|scope| scope.deadline) {
        Some(deadline) if Instant::now() >= deadline => Err(ServiceError::new(
            ErrorCode::Unavailable,
            format!(
                "the write ran out of its region's write time before {what}; retry it with the \
                 same idempotency key"
            ),
        )),
        _ => Ok(()),
    }
}

/// Runs `statement` (a store call serving this task's write), given up at the write's
/// deadline: a statement that lasts longer (a node waiting for the other region, say) would
/// otherwise hold what it holds (a wallet's commit) past the lease the write ran under. Its
/// outcome is then unknown, as after a node's own timeout, and the client retries with its
/// key. With no deadline, it runs as long as the driver lets it.
pub async fn within_deadline<T>(
    what: &str,
    statement: impl Future<Output = ServiceResult<T>>,
) -> ServiceResult<T> {
    let Some(deadline) = current().and_then(|scope| scope.deadline) else {
        return statement.await;
    };
    match tokio::time::timeout_at(deadline, statement).await {
        Ok(result) => result,
        Err(_) => Err(ServiceError::new(
            ErrorCode::Unavailable,
            format!(
                "the write ran out of its region's write time during {what}, whose outcome is \
                 unknown; retry it with the same idempotency key"
            ),
        )),
    }
}

impl WriteScope {
    /// Writes the scope into an outgoing call's headers: the epoch, and what is left of the
    /// deadline as `grpc-timeout` (in milliseconds, at least 1).
    pub fn to_headers(&self, headers: &mut http::HeaderMap) {
        if let Some(epoch) = self.epoch
            && let Ok(value) = http::HeaderValue::from_str(&epoch.to_string())
        {
            headers.insert(EPOCH_HEADER, value);
        }
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let millis = left.as_millis().clamp(1, 99_999_999);
            if let Ok(value) = http::HeaderValue::from_str(&format!("{millis}m")) {
                headers.insert(TIMEOUT_HEADER, value);
            }
        }
    }

    /// The scope an incoming call carries, if it carries either part; a part that does not
    /// parse is left out, as gRPC servers ignore a `grpc-timeout` they cannot read.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let epoch = text(EPOCH_HEADER).and_then(|v| v.parse::<u64>().ok());
        let deadline = text(TIMEOUT_HEADER)
            .and_then(grpc_timeout)
            .map(|left| Instant::now() + left);
        (epoch.is_some() || deadline.is_some()).then_some(Self { epoch, deadline })
    }
}

/// A `grpc-timeout` value: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn grpc_timeout(value: &str) -> Option<Duration> {
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3_600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.
    use super::*;

    #[tokio::test]
    async fn a_statement_is_given_up_at_its_writes_deadline_and_only_then() {
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, ServiceError>(7)
        };
        assert_eq!(
            within_deadline("a write", slow()).await.unwrap(),
            7,
            "no scope"
        );
        let scope = |left: u64| WriteScope {
            epoch: Some(3),
            deadline: Some(Instant::now() + Duration::from_millis(left)),
        };
        let late = WRITE_SCOPE.scope(scope(100), within_deadline("a write", slow()));
        let refused = late.await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::Unavailable);
        assert!(
            refused.message.contains("outcome is unknown"),
            "{refused:?}"
        );
        let in_time = WRITE_SCOPE.scope(scope(3_000), within_deadline("a write", slow()));
        assert_eq!(in_time.await.unwrap(), 7);
    }

    #[test]
    fn grpc_timeouts_read_in_every_unit_and_nothing_else() {
        assert_eq!(grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(grpc_timeout("1H"), Some(Duration::from_secs(3_600)));
        assert_eq!(grpc_timeout("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "m", "123456789m", "12x", "-1m", "1.5S"] {
            assert_eq!(grpc_timeout(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_scope_crosses_headers_with_what_is_left_of_its_deadline() {
        let sent = WriteScope {
            epoch: Some(7),
            deadline: Some(Instant::now() + Duration::from_millis(1_500)),
        };
        let mut headers = http::HeaderMap::new();
        sent.to_headers(&mut headers);
        assert_eq!(headers[EPOCH_HEADER], "7");
        let received = WriteScope::from_headers(&headers).unwrap();
        assert_eq!(received.epoch, Some(7));
        let left = received.deadline.unwrap() - Instant::now();
        assert!(left <= Duration::from_millis(1_500) && left > Duration::from_millis(1_000));
        assert_eq!(WriteScope::from_headers(&http::HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn nothing_starts_once_the_deadline_has_passed() {
        assert!(
            check_deadline("a statement").is_ok(),
            "no scope, no deadline"
        );
        let past = WriteScope {
            epoch: None,
            deadline: Some(Instant::now()),
        };
        let refused = WRITE_SCOPE
            .scope(past, async { check_deadline("a statement") })
            .await
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::Unavailable);
        let later = WriteScope {
            epoch: Some(3),
            deadline: Some(Instant::now() + Duration::from_secs(60)),
        };
        let epoch = WRITE_SCOPE
            .scope(later, async {
                check_deadline("a statement").unwrap();
                epoch()
            })
            .await;
        assert_eq!(epoch, Some(3));
    }
}
