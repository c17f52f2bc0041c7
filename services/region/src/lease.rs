//! A region's write lease. The region keeper renews its region's row in the control keyspace
//! every [`RENEW_EVERY`] with a conditional write under `SERIAL` and a time to live of
//! [`TTL`]. Only a renewal that succeeds extends the lease, and it extends it to
//! [`WRITABLE`] after the renewal was *sent*. The row lives at least `TTL - 1 s` after it
//! was written, which is later than sent: ScyllaDB and Cassandra count a time to live from
//! the whole second the write arrived in. So the region stops writing at least
//! `TTL - WRITABLE - 1 s` before another region can take its row over. That second absorbs
//! the difference between the two processes' clock rates (1 s in 5 s: far beyond any clock
//! that keeps time).
//!
//! The span is a trade: a lost region's tenants wait out the row (an RTO of at least `TTL`
//! after the last renewal), and a region whose renewals take longer than
//! `WRITABLE - RENEW_EVERY - write_time` (1 s with the default write time) refuses writes
//! until one is answered sooner. A renewal is one `SERIAL` round on the control keyspace:
//! a few round trips between the datacenters, well under that.
//!
//! Every process of the region that routes writes keeps its own [`Lease`], from its own
//! reads of the row under `SERIAL` (with the row's remaining time to live): a read is a
//! renewal that found the row with less than [`TTL`] left, and extends the lease less.
//!
//! A write is accepted only if it can finish inside the lease: its deadline must come
//! before the lease's end, so that no write of a region is still running once another
//! region may write the same tenants.

use crate::model::{Epoch, Millis};

/// How often the keeper renews.
pub const RENEW_EVERY: Millis = Millis(1_000);
/// How long the row lives after a renewal (its `USING TTL`).
pub const TTL: Millis = Millis(5_000);
/// How long after sending a successful renewal the region may write.
pub const WRITABLE: Millis = Millis(3_000);
/// How much time to live a region's lease row must have left for the other region to count it
/// as renewed lately (`keeper::Sight::peer_renewing`): renewed every second, it reads 4 or 5 s
/// (whole seconds), and 2 s or less about three seconds after the renewals stop.
pub const RENEWED_LATELY: Millis = Millis(TTL.0 / 2);

/// The lease as one process of the region knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    /// Until when the region may write, and the homes' epoch the renewal found.
    renewed: Option<(Millis, Epoch)>,
}

impl Lease {
    /// A renewal (or a read of the row) sent at `sent` succeeded, found the row with
    /// `remaining` time to live and the homes at `epoch`. The keeper's own renewal leaves
    /// the whole [`TTL`].
    pub fn renewed(&mut self, sent: Millis, remaining: Millis, epoch: Epoch) {
        let margin = TTL.since(WRITABLE);
        let until = sent.plus(WRITABLE.min(remaining.since(margin)));
        // Answers can arrive out of order: keep the lease that lasts longest.
        if self.renewed.is_none_or(|(at, _)| until >= at) {
            self.renewed = Some((until, epoch));
        }
    }

    /// The region lost its lease (a renewal was refused: another region took the row).
    pub fn lost(&mut self) {
        self.renewed = None;
    }

    /// Until when the region may write, if it holds the lease.
    pub fn writable_until(&self) -> Option<Millis> {
        self.renewed.map(|(until, _)| until)
    }

    /// The homes' epoch the last renewal found.
    pub fn epoch(&self) -> Option<Epoch> {
        self.renewed.map(|(_, epoch)| epoch)
    }

    /// Whether a write that may run until `deadline` can be accepted at `now`.
    pub fn may_write(&self, now: Millis, deadline: Millis) -> bool {
        self.writable_until()
            .is_some_and(|until| now < until && deadline <= until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_must_end_inside_the_lease() {
        let mut lease = Lease::default();
        assert!(!lease.may_write(Millis(0), Millis(10)), "no lease yet");
        lease.renewed(Millis(1_000), TTL, Epoch(3));
        assert_eq!(lease.writable_until(), Some(Millis(4_000)));
        assert!(lease.may_write(Millis(1_500), Millis(3_000)));
        assert!(
            !lease.may_write(Millis(1_500), Millis(4_001)),
            "it could still run when another region may write"
        );
        assert!(!lease.may_write(Millis(4_000), Millis(4_000)));
        // A late answer to an older renewal does not shorten the lease.
        lease.renewed(Millis(2_000), TTL, Epoch(3));
        lease.renewed(Millis(1_500), TTL, Epoch(3));
        assert_eq!(lease.writable_until(), Some(Millis(5_000)));
        lease.lost();
        assert!(!lease.may_write(Millis(2_100), Millis(2_200)));
    }

    #[test]
    fn a_read_of_a_row_near_its_end_extends_the_lease_only_to_two_seconds_before_it() {
        let mut lease = Lease::default();
        // The keeper stopped renewing: the row has 2.5 s left when this process reads it.
        lease.renewed(Millis(10_000), Millis(2_500), Epoch(1));
        assert_eq!(lease.writable_until(), Some(Millis(10_500)));
        let mut late = Lease::default();
        late.renewed(Millis(10_000), Millis(1_900), Epoch(1));
        assert!(!late.may_write(Millis(10_000), Millis(10_000)));
    }

    #[test]
    fn the_region_stops_a_second_before_its_row_can_expire() {
        // One second for the row's whole-second expiry, one for the clocks.
        assert_eq!(TTL.since(WRITABLE), Millis(2_000));
        // A write of the default write time (1 s) still fits when a renewal is answered
        // up to a second late.
        assert!(WRITABLE.since(RENEW_EVERY) >= Millis(2_000));
    }
}
