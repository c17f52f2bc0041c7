//! The one seam for time and id generation, so tests control both.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

/// A UTC instant in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Timestamp(at.timestamp_millis())
    }

    pub fn plus_secs(self, secs: i64) -> Self {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    pub fn plus_days(self, days: i64) -> Self {
        self.plus_secs(days.saturating_mul(86_400))
    }

    /// RFC 3339 text, for REST and logs.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

/// Source of the current time and of new ids. ULIDs embed the time, so both come from here.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// A new ULID; monotonic within a process so ids created in one millisecond still sort.
    fn new_ulid(&self) -> ulid::Ulid;
}

/// The real clock.
#[derive(Default)]
pub struct SystemClock {
    ulids: Mutex<ulid::Generator>,
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(Utc::now())
    }

    fn new_ulid(&self) -> ulid::Ulid {
        let mut generator = self.ulids.lock().unwrap_or_else(|e| e.into_inner());
        // Overflow needs 2^80 ids in one millisecond; fall back to a fresh random id.
        generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
    }
}

/// A clock that moves only when a test says so.
pub struct ManualClock {
    now: AtomicI64,
    counter: AtomicI64,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Arc<Self> {
        Arc::new(Self {
            now: AtomicI64::new(start.0),
            counter: AtomicI64::new(0),
        })
    }

    pub fn set(&self, at: Timestamp) {
        self.now.store(at.0, Ordering::SeqCst);
    }

    pub fn advance_secs(&self, secs: i64) {
        self.now.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::SeqCst))
    }

    fn new_ulid(&self) -> ulid::Ulid {
        // Time part from the manual clock, a counter in the random part: unique and ordered.
        let n = self.counter.fetch_add(1, Ordering::SeqCst) as u128;
        ulid::Ulid::from_parts(self.now().0.max(0) as u64, n)
    }
}

/// Shared handle to the clock.
pub type SharedClock = Arc<dyn Clock>;

/// A random secret suitable for tokens, hex-encoded.
pub fn random_token(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
