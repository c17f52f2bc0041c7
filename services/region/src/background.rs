//! Which region does a tenant's background work: the writes no client sent, which a service
//! makes by itself (the campaign service's payouts from its outbox, its sweeps, its
//! triggers; the ledger's housekeeping and its recovery of transfers). They follow the rule client writes follow: they run in the tenant's home,
//! while the region holds its lease, and nowhere while the tenant moves.
//!
//! A store process learns the homes and the leases by reading the control keyspace every
//! second (it renews nothing: a region's lease is its gateways' to keep, and a store process
//! renewing it would keep a region whose gateways are lost from being failed over).

use crate::lease::Lease;
use crate::model::{Epoch, Home, Millis, Region};
use crate::route::{Directory, Refusal, Route};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::Notify;

/// How long one piece of background work may take once started: it starts only if it can end
/// inside the lease, as a client write must.
pub const WORK_TIME: Millis = Millis(1_000);

/// What to do with one tenant's piece of background work now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// It is this region's to do.
    Here,
    /// The tenant's home region does it.
    Elsewhere,
    /// No region may do it now (this region's lease is not held, the tenant is moving, or
    /// has no home): try again later, and do not pass it by.
    Wait(Refusal),
}

/// One store process's view of the homes and of both regions' lease rows.
#[derive(Debug, Clone)]
pub struct Background {
    directory: Directory,
    peer: Region,
    /// This region holds the peer's lease row: it took the peer's tenants over.
    holds_peer: bool,
}

impl Background {
    pub fn new(me: Region, peer: Region) -> Self {
        Self {
            directory: Directory::new(me),
            peer,
            holds_peer: false,
        }
    }

    pub fn region(&self) -> &Region {
        self.directory.region()
    }

    pub fn peer(&self) -> &Region {
        &self.peer
    }

    /// The homes as read at `epoch`.
    pub fn homes_read(&mut self, epoch: Epoch, homes: impl IntoIterator<Item = (String, Home)>) {
        self.directory.load(epoch, homes);
    }

    /// This region's lease row, read under `SERIAL` at `sent`: held by this region with
    /// `expires_in` left (a read extends the lease as a renewal would, less the time the
    /// row has already lived), or not held.
    pub fn own_row_read(&mut self, sent: Millis, held: Option<Millis>, epoch: Epoch) {
        match held {
            Some(expires_in) => self.directory.lease.renewed(sent, expires_in, epoch),
            None => self.directory.lease.lost(),
        }
    }

    /// The peer's lease row, read: whether this region holds it.
    pub fn peer_row_read(&mut self, held_here: bool) {
        self.holds_peer = held_here;
    }

    /// Whether this region may do any background work at `now`. A region without its lease
    /// passes nothing by either: what it would leave to the home may be its own again once
    /// it is failed back, with nobody having done it.
    pub fn may_run(&self, now: Millis) -> bool {
        !self.directory.stale() && self.directory.lease.may_write(now, now.plus(WORK_TIME))
    }

    /// What to do with `tenant`'s work at `now`.
    pub fn handling(&self, tenant: &str, now: Millis) -> Handling {
        // A client write for a tenant on the move is forwarded to the region it leaves, which
        // refuses it; work passed by here would be passed by there too once the move ends.
        if self
            .directory
            .home_of(tenant)
            .is_some_and(|home| home.moving)
        {
            return Handling::Wait(Refusal::Moving);
        }
        match self
            .directory
            .route(tenant, now, now.plus(WORK_TIME), false)
        {
            Route::Local { .. } => Handling::Here,
            Route::Forward { .. } => Handling::Elsewhere,
            Route::Refuse(why) => Handling::Wait(why),
        }
    }

    /// The epoch of `tenant`'s home as last read: what work done here for it is accepted
    /// under (a wallet a newer epoch has written refuses it).
    pub fn home_epoch(&self, tenant: &str) -> Option<Epoch> {
        self.directory.home_of(tenant).map(|home| home.epoch)
    }

    /// Whether this region does the peer's work too: it holds the peer's lease row and every
    /// tenant of the peer's has been moved here. Work the peer left undone is this region's
    /// then (a reader of the peer's starts where the peer stopped).
    pub fn covers_peer(&self) -> bool {
        self.holds_peer && !self.directory.is_home_to_any(&self.peer)
    }

    /// The tenants moving from the peer to this region (a planned move under way).
    pub fn moving_from_peer(&self) -> Vec<String> {
        self.directory.moving_out_of(&self.peer)
    }

    /// Whether `tenant` is homed in this region and not moving.
    pub fn homed_here(&self, tenant: &str) -> bool {
        let home = self.directory.home_of(tenant);
        home.is_some_and(|home| home.region == *self.region() && !home.moving)
    }

    /// The lease as this process knows it.
    pub fn lease(&self) -> &Lease {
        &self.directory.lease
    }
}

/// A process's view, shared by the task that reads the control keyspace and the work that
/// asks it, with the monotonic clock both measure the lease on.
#[derive(Debug, Clone)]
pub struct SharedView {
    view: Arc<RwLock<Background>>,
    clock: Instant,
    /// Wakes the reading task before its next read is due.
    nudged: Arc<Notify>,
}

impl SharedView {
    pub fn new(me: Region, peer: Region) -> Self {
        Self {
            view: Arc::new(RwLock::new(Background::new(me, peer))),
            clock: Instant::now(),
            nudged: Arc::new(Notify::new()),
        }
    }

    /// Asks the reading task to read the control keyspace again now: a region keeper in the
    /// same process has just changed it (taken the other region over).
    pub fn nudge(&self) {
        self.nudged.notify_one();
    }

    /// Until [`SharedView::nudge`] is called (at once if it was since the last wait).
    pub async fn nudged(&self) {
        self.nudged.notified().await;
    }

    /// Now, on the view's clock: what a read of the lease row is stamped with when sent.
    pub fn now(&self) -> Millis {
        Millis(u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Asks the view, at now.
    pub fn read<T>(&self, ask: impl FnOnce(&Background, Millis) -> T) -> T {
        let now = self.now();
        let view = self.view.read().unwrap_or_else(|p| p.into_inner());
        ask(&view, now)
    }

    /// Changes the view.
    pub fn update(&self, change: impl FnOnce(&mut Background)) {
        let mut view = self.view.write().unwrap_or_else(|p| p.into_inner());
        change(&mut view);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion.
    use super::*;
    use crate::lease::TTL;

    fn region(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    fn home(name: &str, moving: bool) -> Home {
        Home {
            region: region(name),
            epoch: Epoch(4),
            moving,
        }
    }

    fn view() -> Background {
        let mut view = Background::new(region("a"), region("b"));
        view.homes_read(
            Epoch(4),
            [
                ("acme".to_string(), home("a", false)),
                ("globex".to_string(), home("b", false)),
                ("initech".to_string(), home("a", true)),
            ],
        );
        view
    }

    #[test]
    fn work_runs_in_the_home_and_only_inside_the_lease() {
        let mut view = view();
        let now = Millis(10_000);
        assert!(!view.may_run(now), "no lease read yet");
        assert_eq!(view.handling("acme", now), Handling::Wait(Refusal::Fenced));
        view.own_row_read(now, Some(TTL), Epoch(4));
        assert!(view.may_run(now));
        assert_eq!(view.handling("acme", now), Handling::Here);
        assert_eq!(view.handling("globex", now), Handling::Elsewhere);
        assert_eq!(
            view.handling("initech", now),
            Handling::Wait(Refusal::Moving)
        );
        assert_eq!(
            view.handling("hooli", now),
            Handling::Wait(Refusal::Unknown)
        );
        let late = Millis(13_500);
        assert!(!view.may_run(late), "it could not end inside the lease");
        assert_eq!(view.handling("acme", late), Handling::Wait(Refusal::Fenced));
    }

    #[test]
    fn a_tenant_moving_here_waits_in_both_regions() {
        let mut view = Background::new(region("b"), region("a"));
        view.homes_read(Epoch(4), [("initech".to_string(), home("a", true))]);
        let now = Millis(10_000);
        view.own_row_read(now, Some(TTL), Epoch(4));
        assert_eq!(
            view.handling("initech", now),
            Handling::Wait(Refusal::Moving),
            "not passed by: the region it leaves will pass it by once it has arrived"
        );
    }

    #[test]
    fn a_tenant_moving_here_is_told_apart_from_one_moving_away() {
        let mut view = Background::new(region("b"), region("a"));
        let homes = [
            ("initech".to_string(), home("a", true)),
            ("acme".to_string(), home("a", false)),
            ("globex".to_string(), home("b", true)),
            ("hooli".to_string(), home("b", false)),
        ];
        view.homes_read(Epoch(4), homes);
        assert_eq!(view.moving_from_peer(), ["initech"]);
        let here = ["initech", "acme", "globex", "hooli"].map(|t| view.homed_here(t));
        assert_eq!(here, [false, false, false, true]);
    }

    #[test]
    fn a_row_read_near_its_end_gives_little_time() {
        let mut view = view();
        let now = Millis(10_000);
        view.own_row_read(now, Some(Millis(2_900)), Epoch(4));
        assert!(
            !view.may_run(now),
            "0.9 s left: less than the work may take"
        );
        view.own_row_read(now, Some(Millis(5_000)), Epoch(4));
        assert!(view.may_run(now));
        view.own_row_read(Millis(10_500), None, Epoch(4));
        assert!(
            !view.may_run(Millis(10_600)),
            "the row is the other region's"
        );
    }

    #[test]
    fn homes_older_than_the_lease_has_seen_stop_all_work() {
        let mut view = view();
        let now = Millis(10_000);
        view.own_row_read(now, Some(TTL), Epoch(5));
        assert!(!view.may_run(now));
        assert_eq!(view.handling("acme", now), Handling::Wait(Refusal::Fenced));
    }

    #[test]
    fn the_peers_work_is_covered_once_its_tenants_are_all_moved_here() {
        let mut view = view();
        view.peer_row_read(true);
        assert!(!view.covers_peer(), "globex is still homed in b");
        let mut moved = home("a", false);
        moved.epoch = Epoch(5);
        view.homes_read(
            Epoch(5),
            [
                ("acme".to_string(), moved.clone()),
                ("globex".to_string(), moved),
            ],
        );
        assert!(view.covers_peer());
        view.peer_row_read(false);
        assert!(!view.covers_peer(), "a failback gave b its row back");
    }
}
