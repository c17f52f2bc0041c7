//! The region keeper: one process per region (under a scheduler lease) that renews the
//! region's lease, and, in automatic mode, takes the other region's tenants over once that
//! region has failed its health checks for `failover_after` and its lease row has expired.
//!
//! A take-over is a conditional write under `SERIAL` that creates the lost region's lease row
//! (`IF NOT EXISTS`): it succeeds only once the row has expired, which is at least
//! [`crate::lease::TTL`] after the lost region's last renewal, and by then that region has
//! stopped writing (`lease`). Then the keeper moves each of its tenants here, bumping the
//! homes' epoch. A flapping region cannot cause two homes: while its lease lives, the
//! take-over fails, whatever the health checks say. A peer this keeper has never seen ready
//! is never taken over automatically: it may be starting.
//!
//! A planned move (failback) never races a writer either: the tenant is first marked
//! `moving` (no region writes it), then, after [`MOVE_QUIET`], homed in its new region.

use crate::lease::{RENEW_EVERY, WRITABLE};
use crate::model::{Millis, Region};

/// How long a planned move keeps its tenant unwritable: long enough for every process of the
/// old home to have read the `moving` mark (one renewal) and for any write it accepted before
/// to have ended (at most the lease's span).
pub const MOVE_QUIET: Millis = Millis(WRITABLE.0 + RENEW_EVERY.0);

/// How often a take-over is tried while the lost region's lease still lives: each attempt is
/// a `SERIAL` round on its row, which the lost region, if it is only slow, is renewing.
pub const TAKE_OVER_EVERY: Millis = Millis(1_000);

/// What the keeper does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Renew this region's lease (and read the homes' epoch).
    Renew,
    /// Take `from`'s lease row if it has expired, and move its tenants here.
    TakeOver { from: Region },
}

#[derive(Debug, Clone)]
pub struct Keeper {
    pub me: Region,
    pub peer: Region,
    /// Automatic failover after the peer has been unhealthy this long; None: manual only.
    pub failover_after: Option<Millis>,
    last_renewal: Option<Millis>,
    last_take_over: Option<Millis>,
    unhealthy_since: Option<Millis>,
    /// The peer's tenants were taken over; no further take-over until it is healthy again.
    took_over: bool,
    /// The peer has passed a health check since this keeper started. A peer never seen
    /// ready is not taken over automatically: it may be starting up (both regions' first
    /// minutes), and a take-over would fence it until an operator fails back.
    seen_healthy: bool,
}

impl Keeper {
    pub fn new(me: Region, peer: Region, failover_after: Option<Millis>) -> Self {
        Self {
            me,
            peer,
            failover_after,
            last_renewal: None,
            last_take_over: None,
            unhealthy_since: None,
            took_over: false,
            seen_healthy: false,
        }
    }

    /// What to do at `now`, given whether the peer's gateway passed its last health check.
    pub fn tick(&mut self, now: Millis, peer_healthy: bool) -> Vec<Action> {
        let mut actions = Vec::new();
        if self
            .last_renewal
            .is_none_or(|at| now.since(at) >= RENEW_EVERY)
        {
            self.last_renewal = Some(now);
            actions.push(Action::Renew);
        }
        if peer_healthy {
            self.unhealthy_since = None;
            self.took_over = false;
            self.seen_healthy = true;
            return actions;
        }
        let since = *self.unhealthy_since.get_or_insert(now);
        let due = self
            .failover_after
            .is_some_and(|after| now.since(since) >= after);
        let spaced = self
            .last_take_over
            .is_none_or(|at| now.since(at) >= TAKE_OVER_EVERY);
        if due && spaced && self.seen_healthy && !self.took_over {
            self.last_take_over = Some(now);
            actions.push(Action::TakeOver {
                from: self.peer.clone(),
            });
        }
        actions
    }

    /// The take-over succeeded (the peer's row had expired and its tenants moved here).
    pub fn took_over(&mut self) {
        self.took_over = true;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion.
    use super::*;

    #[test]
    fn renews_every_second_and_takes_over_after_the_peer_failed_long_enough() {
        let (a, b) = (Region::parse("a").unwrap(), Region::parse("b").unwrap());
        let mut keeper = Keeper::new(b.clone(), a.clone(), Some(Millis(3_000)));
        assert_eq!(keeper.tick(Millis(0), true), [Action::Renew]);
        assert!(keeper.tick(Millis(500), true).is_empty());
        assert_eq!(keeper.tick(Millis(1_000), false), [Action::Renew]);
        assert!(keeper.tick(Millis(3_900), false).contains(&Action::Renew));
        let take = Action::TakeOver { from: a.clone() };
        assert_eq!(
            keeper.tick(Millis(4_000), false),
            std::slice::from_ref(&take)
        );
        // Refused (the peer's lease still lives): asked again a second later.
        assert!(keeper.tick(Millis(4_500), false).is_empty());
        assert_eq!(keeper.tick(Millis(5_000), false), [Action::Renew, take]);
        keeper.took_over();
        assert!(keeper.tick(Millis(5_200), false).is_empty());
        // Healthy again, then lost again: the clock starts over.
        keeper.tick(Millis(9_000), true);
        assert_eq!(keeper.tick(Millis(9_100), false), []);
        let manual = Keeper::new(b.clone(), a.clone(), None).tick(Millis(60_000), false);
        assert_eq!(manual, [Action::Renew], "manual mode never takes over");
        let mut starting = Keeper::new(b, a, Some(Millis(3_000)));
        for at in (0..60_000).step_by(200) {
            let actions = starting.tick(Millis(at), false);
            assert!(
                !actions.iter().any(|a| matches!(a, Action::TakeOver { .. })),
                "a peer never seen ready may be starting: not taken over"
            );
        }
    }
}
