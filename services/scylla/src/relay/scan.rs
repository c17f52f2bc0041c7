//! Which hints a relay pass reads.
//!
//! Reading every hint partition of the last minutes on every pass costs a row for every hint
//! written in those minutes, most of them deleted already: tombstones a read must step over.
//! At a thousand commits a second that is a hundred thousand rows five times a second, and
//! Cassandra refuses a read past 100,000 tombstones. So a pass reads only the hints written
//! in the last [`RECENT_MS`] (a clustering range: the older rows and their tombstones are
//! not touched), and carries the hints it read but could not finish (a commit not visible
//! yet, a partition with more rows than a pass reads) to the next pass. Every
//! [`SWEEP_INTERVAL`], and after a pass that failed, a sweep reads the whole window again:
//! it finds hints that arrived late (a writer whose clock is behind, a write slower than
//! [`RECENT_MS`]), whose events are then handed on within [`SWEEP_INTERVAL`] instead of a
//! pass interval.

use scylla::value::CqlTimestamp;
use std::time::{Duration, Instant};

/// The hints a pass between sweeps reads: those written this recently, by their writer's
/// clock. Longer than a hint write takes (`scylla.request_timeout_ms`, 2 s by default).
pub(super) const RECENT_MS: i64 = 5_000;
/// How often a pass reads every hint of the window (and may raise its low-water minute).
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// A hint as a pass read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hint {
    pub bucket_minute: i32,
    pub shard: i32,
    pub at: CqlTimestamp,
    pub position: u64,
}

/// A hint a pass read and left for the next one: its partition, and itself.
pub(super) type Carried = (String, String, Hint);

/// What a relay remembers between its passes.
#[derive(Default)]
pub(super) struct Scan {
    last_sweep: Option<Instant>,
    carried: Vec<Carried>,
}

/// What one pass reads.
pub(super) struct Plan {
    /// Whether it reads every hint from the low-water minute on.
    pub sweep: bool,
    /// Otherwise, the hints written since then.
    pub since: Option<CqlTimestamp>,
    /// The first minute it reads.
    pub first_minute: i32,
    /// The hints earlier passes left, to be tried again.
    pub carried: Vec<Carried>,
    previous_sweep: Option<Instant>,
}

impl Scan {
    /// The plan of a pass starting `now` (ms) with the low-water minute `low`. Until
    /// [`Scan::finish`], the scan is as after a failed pass: the next one sweeps.
    pub(super) fn begin(&mut self, low: i32, now: i64) -> Plan {
        let previous_sweep = self.last_sweep.take();
        let carried = std::mem::take(&mut self.carried);
        let sweep = previous_sweep.is_none_or(|at| at.elapsed() >= SWEEP_INTERVAL);
        if sweep {
            return Plan {
                sweep,
                since: None,
                first_minute: low,
                carried,
                previous_sweep,
            };
        }
        let since = now - RECENT_MS;
        Plan {
            sweep,
            since: Some(CqlTimestamp(since)),
            first_minute: super::minute(since).max(low),
            carried,
            previous_sweep,
        }
    }

    /// Forgets what earlier passes learnt (the lease was held by another relay since): the
    /// next pass sweeps.
    pub(super) fn forget(&mut self) {
        *self = Self::default();
    }

    /// A pass done: the hints it leaves to the next pass.
    pub(super) fn finish(&mut self, plan: Plan, left: Vec<Carried>) {
        self.last_sweep = if plan.sweep {
            Some(Instant::now())
        } else {
            plan.previous_sweep
        };
        self.carried = left;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(at: i64) -> Carried {
        let h = Hint {
            bucket_minute: super::super::minute(at),
            shard: 3,
            at: CqlTimestamp(at),
            position: 7,
        };
        ("t".into(), "m".into(), h)
    }

    #[test]
    fn a_pass_sweeps_first_then_reads_what_is_recent_with_what_was_left() {
        let now = 1_800_000_000_000;
        let mut scan = Scan::default();
        let first = scan.begin(10, now);
        assert!(first.sweep && first.since.is_none());
        assert_eq!(first.first_minute, 10);
        scan.finish(first, vec![hint(now - 1)]);

        let second = scan.begin(10, now);
        assert!(!second.sweep);
        assert_eq!(second.since, Some(CqlTimestamp(now - RECENT_MS)));
        assert_eq!(second.first_minute, super::super::minute(now - RECENT_MS));
        assert_eq!(second.carried, vec![hint(now - 1)]);
        scan.finish(second, Vec::new());
        assert!(!scan.begin(10, now).sweep, "the sweep is remembered");
    }

    #[test]
    fn a_pass_that_does_not_finish_makes_the_next_one_sweep() {
        let now = 1_800_000_000_000;
        let mut scan = Scan::default();
        let first = scan.begin(10, now);
        scan.finish(first, vec![hint(now)]);
        let failed = scan.begin(10, now);
        assert!(!failed.sweep);
        drop(failed); // an error or a lost race: no finish
        let next = scan.begin(10, now);
        assert!(next.sweep);
        assert!(next.carried.is_empty(), "a sweep reads them again");
        scan.finish(next, vec![hint(now)]);
        scan.forget();
        let after_lease_lost = scan.begin(10, now);
        assert!(after_lease_lost.sweep && after_lease_lost.carried.is_empty());
    }
}
