//! The region keeper: one process per region (under a scheduler lease) that renews the
//! region's lease, and, in automatic mode, takes the other region's tenants over once that
//! region has failed its health checks for `failover_after` and its lease row has expired.
//!
//! A take-over is a conditional write under `SERIAL` that creates the lost region's lease row
//! (`IF NOT EXISTS`): it succeeds only once the row has expired, which is at least
//! [`crate::lease::TTL`] after the lost region's last renewal, and by then that region has
//! stopped writing (`lease`). Then the keeper moves each of its tenants here, bumping the
//! homes' epoch. A flapping region cannot cause two homes: while its lease lives, the
//! take-over fails, whatever the health checks say. A peer not known to have run is never
//! taken over automatically: it may still be being deployed. It is known to have run once
//! this keeper has seen it ready or renewing its lease, or found a heartbeat of its in this
//! datacenter (which a keeper restarted while the regions are cut apart needs: the other
//! region may have yielded before it started).
//!
//! A planned move (failback) never races a writer either: the tenant is first marked
//! `moving` (no region writes it), then, after [`MOVE_QUIET`], homed in its new region.
//!
//! **A cut between the regions alone** (each still reaching the witness) leaves both
//! renewing, so neither may take the other over; with synchronous writes (`EACH_QUORUM`)
//! neither home can write either, since each write waits for the other region. So with
//! [`Keeper::yield_in_cuts`], once the peer has failed its health checks for
//! `failover_after` while the control keyspace shows it renewing, one region (the same one,
//! decided alike on both sides: [`yields`]) stops renewing. Its lease lapses, the other takes
//! its tenants over and writes without it, and it is fenced until rebuilt, as after any
//! failover. With asynchronous writes each home goes on writing through a cut, and yielding
//! would throw away what it wrote: the rule stays off.

use crate::lease::{RENEW_EVERY, WRITABLE};
use crate::model::{Millis, Region};

/// How long a planned move keeps its tenant unwritable: long enough for every process of the
/// old home to have read the `moving` mark (one renewal) and for any write it accepted before
/// to have ended (at most the lease's span).
pub const MOVE_QUIET: Millis = Millis(WRITABLE.0 + RENEW_EVERY.0);

/// How often a take-over is tried while the lost region's lease still lives: each attempt is
/// a `SERIAL` round on its row, which the lost region, if it is only slow, is renewing. Its
/// row lapses at a whole second nobody here knows in advance, and every moment after that
/// the lost region's tenants wait; a few rounds a second, and only while a region is lost,
/// cost the control keyspace little.
pub const TAKE_OVER_EVERY: Millis = Millis(250);

/// What the keeper does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Renew this region's lease (and read the homes' epoch).
    Renew,
    /// Take `from`'s lease row if it has expired, and move its tenants here.
    TakeOver { from: Region },
}

/// What a keeper sees of the other region at a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sight {
    /// Its gateway passed its last health check.
    pub peer_healthy: bool,
    /// The control keyspace (read under `SERIAL`) shows it renewing its own lease: it is
    /// alive and reaches a majority, so if it fails its health checks, it is cut off from
    /// this region only.
    pub peer_renewing: bool,
    /// Some tenant is homed in this region; in the other region.
    pub home_to_any: bool,
    pub peer_home_to_any: bool,
    /// A heartbeat of the other region's has reached this datacenter: it has run.
    pub peer_has_run: bool,
}

/// Whether `me` is the region that yields in a cut between it and `peer`: the one whose name
/// sorts last, unless it is home to no tenant (the other would not take it over: yielding
/// would end nothing) or the other is (it would not be taken over either). Both regions read
/// the same homes, so both decide alike.
pub fn yields(me: &Region, peer: &Region, sight: &Sight) -> bool {
    match (sight.home_to_any, sight.peer_home_to_any) {
        (false, _) => false,
        (true, false) => true,
        (true, true) => me > peer,
    }
}

#[derive(Debug, Clone)]
pub struct Keeper {
    pub me: Region,
    pub peer: Region,
    /// Automatic failover after the peer has been unhealthy this long; None: manual only.
    pub failover_after: Option<Millis>,
    /// Whether this region may yield in a cut between the regions (the module's comment);
    /// right only with synchronous writes.
    yield_in_cuts: bool,
    /// This region stopped renewing to end a cut: the peer renews and fails its checks.
    yielding: bool,
    last_renewal: Option<Millis>,
    last_take_over: Option<Millis>,
    unhealthy_since: Option<Millis>,
    /// The peer's tenants were taken over; no further take-over until it is healthy again.
    took_over: bool,
    /// The peer is known to have run (the module's comment). One that is not may still be
    /// being deployed (both regions' first minutes), and a take-over would fence it until an
    /// operator fails back.
    seen_alive: bool,
}

impl Keeper {
    pub fn new(me: Region, peer: Region, failover_after: Option<Millis>) -> Self {
        Self {
            me,
            peer,
            failover_after,
            yield_in_cuts: false,
            yielding: false,
            last_renewal: None,
            last_take_over: None,
            unhealthy_since: None,
            took_over: false,
            seen_alive: false,
        }
    }

    /// Lets this region yield in a cut between the regions: for synchronous writes.
    pub fn yield_in_cuts(mut self, enabled: bool) -> Self {
        self.yield_in_cuts = enabled;
        self
    }

    /// Whether this region has stopped renewing to end a cut between the regions.
    pub fn yielding(&self) -> bool {
        self.yielding
    }

    /// What to do at `now`, given what this region sees of the other.
    pub fn tick(&mut self, now: Millis, sight: Sight) -> Vec<Action> {
        let mut actions = Vec::new();
        if sight.peer_healthy {
            self.unhealthy_since = None;
            self.took_over = false;
        }
        self.seen_alive |= sight.peer_healthy || sight.peer_renewing || sight.peer_has_run;
        let since = match sight.peer_healthy {
            true => now,
            false => *self.unhealthy_since.get_or_insert(now),
        };
        let due = self
            .failover_after
            .is_some_and(|after| now.since(since) >= after);
        // Decided again at every tick: the cut healed (the peer is healthy), or the peer
        // stopped renewing (lost too, or yielding itself), and this region renews again.
        self.yielding = self.yield_in_cuts
            && due
            && sight.peer_renewing
            && yields(&self.me, &self.peer, &sight);
        if !self.yielding
            && self
                .last_renewal
                .is_none_or(|at| now.since(at) >= RENEW_EVERY)
        {
            self.last_renewal = Some(now);
            actions.push(Action::Renew);
        }
        if sight.peer_healthy {
            return actions;
        }
        let spaced = self
            .last_take_over
            .is_none_or(|at| now.since(at) >= TAKE_OVER_EVERY);
        // A region home to no tenant is not taken over: that would fence it, for nothing.
        let worth = sight.peer_home_to_any;
        if due && spaced && worth && self.seen_alive && !self.took_over && !self.yielding {
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

    /// The peer healthy or not, not seen renewing, and both regions home to tenants.
    fn seen(peer_healthy: bool) -> Sight {
        Sight {
            peer_healthy,
            peer_renewing: false,
            home_to_any: true,
            peer_home_to_any: true,
            peer_has_run: false,
        }
    }

    #[test]
    fn renews_every_second_and_takes_over_after_the_peer_failed_long_enough() {
        let (a, b) = (Region::parse("a").unwrap(), Region::parse("b").unwrap());
        let mut keeper = Keeper::new(b.clone(), a.clone(), Some(Millis(3_000)));
        assert_eq!(keeper.tick(Millis(0), seen(true)), [Action::Renew]);
        assert!(keeper.tick(Millis(500), seen(true)).is_empty());
        assert_eq!(keeper.tick(Millis(1_000), seen(false)), [Action::Renew]);
        assert!(
            keeper
                .tick(Millis(3_900), seen(false))
                .contains(&Action::Renew)
        );
        let take = Action::TakeOver { from: a.clone() };
        assert_eq!(
            keeper.tick(Millis(4_000), seen(false)),
            std::slice::from_ref(&take)
        );
        // Refused (the peer's lease still lives): asked again a quarter of a second later.
        assert!(keeper.tick(Millis(4_200), seen(false)).is_empty());
        assert_eq!(
            keeper.tick(Millis(4_250), seen(false)),
            std::slice::from_ref(&take)
        );
        assert_eq!(
            keeper.tick(Millis(5_000), seen(false)),
            [Action::Renew, take]
        );
        keeper.took_over();
        assert!(keeper.tick(Millis(5_200), seen(false)).is_empty());
        // Healthy again, then lost again: the clock starts over.
        keeper.tick(Millis(9_000), seen(true));
        assert_eq!(keeper.tick(Millis(9_100), seen(false)), []);
        let manual = Keeper::new(b.clone(), a.clone(), None).tick(Millis(60_000), seen(false));
        assert_eq!(manual, [Action::Renew], "manual mode never takes over");
        let mut starting = Keeper::new(b.clone(), a.clone(), Some(Millis(3_000)));
        let mut idle = Keeper::new(b, a, Some(Millis(3_000)));
        idle.tick(Millis(0), seen(true));
        let homes_none = Sight {
            peer_home_to_any: false,
            ..seen(false)
        };
        for at in (0..60_000).step_by(200) {
            let actions = starting.tick(Millis(at), seen(false));
            assert!(
                !actions.iter().any(|a| matches!(a, Action::TakeOver { .. })),
                "a peer never seen ready may be starting: not taken over"
            );
            let actions = idle.tick(Millis(at + 200), homes_none);
            assert!(
                !actions.iter().any(|a| matches!(a, Action::TakeOver { .. })),
                "a peer home to no tenant is left alone"
            );
        }
    }

    #[test]
    fn in_a_cut_between_the_regions_the_later_named_one_stops_renewing_until_it_heals() {
        let (a, b) = (Region::parse("a").unwrap(), Region::parse("b").unwrap());
        let cut = Sight {
            peer_renewing: true,
            ..seen(false)
        };
        let mut keeper_b =
            Keeper::new(b.clone(), a.clone(), Some(Millis(3_000))).yield_in_cuts(true);
        let mut keeper_a =
            Keeper::new(a.clone(), b.clone(), Some(Millis(3_000))).yield_in_cuts(true);
        for keeper in [&mut keeper_a, &mut keeper_b] {
            keeper.tick(Millis(0), seen(true));
            assert_eq!(keeper.tick(Millis(1_000), cut), [Action::Renew]);
        }
        // Three seconds of failed checks while the peer renews: b yields, a goes on and
        // tries to take b over (refused until b's row lapses).
        assert!(keeper_b.tick(Millis(4_000), cut).is_empty());
        assert!(keeper_b.yielding());
        let take_b = Action::TakeOver { from: b.clone() };
        assert_eq!(keeper_a.tick(Millis(4_000), cut), [Action::Renew, take_b]);
        assert!(!keeper_a.yielding());
        assert!(
            keeper_b.tick(Millis(9_000), cut).is_empty(),
            "no renewal, no take-over"
        );
        // Healed: b renews again (refused if a took its row meanwhile).
        assert_eq!(keeper_b.tick(Millis(9_500), seen(true)), [Action::Renew]);
        assert!(!keeper_b.yielding());
        // Cut again, and a stops renewing too (it was lost meanwhile): b is the survivor.
        keeper_b.tick(Millis(10_000), cut);
        assert!(keeper_b.tick(Millis(13_000), cut).is_empty());
        let lost = keeper_b.tick(Millis(14_000), seen(false));
        assert_eq!(lost, [Action::Renew, Action::TakeOver { from: a.clone() }]);
        // Off (asynchronous writes), or in manual mode, nobody yields.
        let mut off = Keeper::new(b.clone(), a.clone(), Some(Millis(3_000)));
        off.tick(Millis(0), seen(true));
        assert!(off.tick(Millis(5_000), cut).contains(&Action::Renew));
        let mut manual = Keeper::new(b.clone(), a.clone(), None).yield_in_cuts(true);
        assert_eq!(manual.tick(Millis(60_000), cut), [Action::Renew]);
    }

    #[test]
    fn a_keeper_started_in_a_cut_takes_over_a_peer_it_knows_has_run() {
        let (a, b) = (Region::parse("a").unwrap(), Region::parse("b").unwrap());
        // Restarted while cut off from b, which had yielded before: b is neither ready nor
        // renewing as seen from here.
        let take_b = Action::TakeOver { from: b.clone() };
        let mut unknown = Keeper::new(a.clone(), b.clone(), Some(Millis(3_000)));
        let mut known = Keeper::new(a, b, Some(Millis(3_000)));
        let ran = Sight {
            peer_has_run: true,
            ..seen(false)
        };
        for at in (0..10_000).step_by(250) {
            assert!(!unknown.tick(Millis(at), seen(false)).contains(&take_b));
            known.tick(Millis(at), ran);
        }
        assert!(known.tick(Millis(10_000), ran).contains(&take_b));
        // Seen renewing through the witness is as good: it runs, cut off from here.
        let renewing = Sight {
            peer_renewing: true,
            ..seen(false)
        };
        unknown.tick(Millis(10_000), renewing);
        assert!(unknown.tick(Millis(10_250), seen(false)).contains(&take_b));
    }

    #[test]
    fn the_region_that_yields_is_decided_alike_on_both_sides() {
        let (a, b) = (Region::parse("a").unwrap(), Region::parse("b").unwrap());
        let homes = |home_to_any, peer_home_to_any| Sight {
            home_to_any,
            peer_home_to_any,
            ..Sight::default()
        };
        // Both home to tenants: the later name yields.
        assert!(yields(&b, &a, &homes(true, true)) && !yields(&a, &b, &homes(true, true)));
        // b home to none: taking it over would end nothing, so a yields.
        assert!(yields(&a, &b, &homes(true, false)) && !yields(&b, &a, &homes(false, true)));
        assert!(!yields(&a, &b, &homes(false, false)) && !yields(&b, &a, &homes(false, false)));
    }
}
