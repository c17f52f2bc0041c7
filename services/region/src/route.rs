//! Where a write for a tenant runs: in this region, if the tenant is homed here and the
//! region holds its lease; forwarded to the tenant's home otherwise; refused when neither
//! can take it now (the caller answers `503` with `Retry-After`, and the client retries with
//! the same idempotency key).

use crate::lease::Lease;
use crate::model::{Epoch, Home, Millis, Region};
use std::collections::HashMap;

/// What to do with one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Run it here, under this epoch (it travels with the write into the store).
    Local {
        epoch: Epoch,
    },
    /// Send it to the tenant's home region, with the caller's credentials and keys.
    Forward {
        to: Region,
    },
    Refuse(Refusal),
}

/// Why a write can run nowhere now. Each is transient: a retry may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Homed here, but the region's lease is not held (it is cut off from the control
    /// keyspace, or has been failed over): `region.fenced`.
    #[error("this region may not write the tenant now (its lease is not held)")]
    Fenced,
    /// Forwarded here by the other region, which thinks this is the home, but it is not:
    /// the two regions' views of the homes differ for a moment (a failover is under way).
    /// Never forwarded a second time: `region.not_home`.
    #[error("the tenant's home is not this region; retry")]
    NotHome,
    /// The tenant's home is being moved (a failback): no region writes it until the move
    /// ends, a few seconds: `region.moving`.
    #[error("the tenant's home is moving to another region; retry")]
    Moving,
    /// No home is known for the tenant (it has none yet, or the homes are not loaded).
    #[error("no home region is known for the tenant")]
    Unknown,
}

/// One process's view of the homes and of its region's lease.
#[derive(Debug, Clone)]
pub struct Directory {
    me: Region,
    homes: HashMap<String, Home>,
    /// The homes' epoch when they were loaded: every move of a home bumps it.
    loaded: Option<Epoch>,
    pub lease: Lease,
}

impl Directory {
    pub fn new(me: Region) -> Self {
        Self {
            me,
            homes: HashMap::new(),
            loaded: None,
            lease: Lease::default(),
        }
    }

    pub fn region(&self) -> &Region {
        &self.me
    }

    /// Replaces the view of the homes with what the control keyspace held at `epoch`, unless
    /// a newer epoch is loaded already (two reads can answer out of order).
    pub fn load(&mut self, epoch: Epoch, homes: impl IntoIterator<Item = (String, Home)>) {
        if self.loaded.is_some_and(|loaded| loaded > epoch) {
            return;
        }
        self.homes = homes.into_iter().collect();
        self.loaded = Some(epoch);
    }

    /// Whether the homes must be read again: the lease found them moved since.
    pub fn stale(&self) -> bool {
        self.lease.epoch() > self.loaded
    }

    pub fn home_of(&self, tenant: &str) -> Option<&Home> {
        self.homes.get(tenant)
    }

    /// Whether any tenant is homed in `region`, or moving out of it.
    pub fn is_home_to_any(&self, region: &Region) -> bool {
        self.homes.values().any(|home| home.region == *region)
    }

    /// The tenants homed in `region` and moving out of it.
    pub fn moving_out_of(&self, region: &Region) -> Vec<String> {
        let moving = self.homes.iter();
        let moving = moving.filter(|(_, home)| home.moving && home.region == *region);
        moving.map(|(tenant, _)| tenant.clone()).collect()
    }

    /// Where a write for `tenant`, arriving at `now` and allowed to run until `deadline`,
    /// goes. `forwarded`: the other region sent it here.
    pub fn route(&self, tenant: &str, now: Millis, deadline: Millis, forwarded: bool) -> Route {
        let Some(home) = self.homes.get(tenant) else {
            return Route::Refuse(Refusal::Unknown);
        };
        if home.region != self.me {
            if forwarded {
                return Route::Refuse(Refusal::NotHome);
            }
            return Route::Forward {
                to: home.region.clone(),
            };
        }
        if home.moving {
            return Route::Refuse(Refusal::Moving);
        }
        // Homes loaded before a move the lease has seen may name this region wrongly: writes
        // wait until they are read again.
        if !self.stale() && self.lease.may_write(now, deadline) {
            Route::Local { epoch: home.epoch }
        } else {
            Route::Refuse(Refusal::Fenced)
        }
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
            epoch: Epoch(2),
            moving,
        }
    }

    fn directory() -> Directory {
        let mut d = Directory::new(region("a"));
        d.load(
            Epoch(2),
            [
                ("acme".to_string(), home("a", false)),
                ("globex".to_string(), home("b", false)),
                ("initech".to_string(), home("a", true)),
            ],
        );
        d
    }

    #[test]
    fn a_home_tenant_is_written_here_only_inside_the_lease() {
        let mut d = directory();
        let at = |ms| (Millis(ms), Millis(ms + 500));
        let (now, deadline) = at(100);
        assert_eq!(
            d.route("acme", now, deadline, false),
            Route::Refuse(Refusal::Fenced)
        );
        d.lease.renewed(Millis(0), TTL, Epoch(2));
        assert_eq!(
            d.route("acme", now, deadline, false),
            Route::Local { epoch: Epoch(2) }
        );
        let (now, deadline) = at(3_600);
        assert_eq!(
            d.route("acme", now, deadline, false),
            Route::Refuse(Refusal::Fenced),
            "it could not finish inside the lease"
        );
    }

    #[test]
    fn an_older_read_of_the_homes_never_replaces_a_newer_one() {
        let mut d = directory();
        d.load(Epoch(1), [("acme".to_string(), home("b", false))]);
        assert_eq!(d.home_of("acme"), Some(&home("a", false)), "epoch 2 stays");
        let mut newer = home("b", false);
        newer.epoch = Epoch(3);
        d.load(Epoch(3), [("acme".to_string(), newer.clone())]);
        assert_eq!(d.home_of("acme"), Some(&newer));
    }

    #[test]
    fn other_tenants_are_forwarded_once() {
        let d = directory();
        let (now, deadline) = (Millis(0), Millis(500));
        assert_eq!(
            d.route("globex", now, deadline, false),
            Route::Forward { to: region("b") }
        );
        assert_eq!(
            d.route("globex", now, deadline, true),
            Route::Refuse(Refusal::NotHome)
        );
        assert_eq!(
            d.route("hooli", now, deadline, false),
            Route::Refuse(Refusal::Unknown)
        );
    }

    #[test]
    fn homes_older_than_the_lease_has_seen_are_read_again_before_any_write() {
        let mut d = directory();
        d.lease.renewed(Millis(0), TTL, Epoch(3));
        assert!(d.stale());
        assert_eq!(
            d.route("acme", Millis(10), Millis(20), false),
            Route::Refuse(Refusal::Fenced)
        );
        d.load(Epoch(3), [("acme".to_string(), home("a", false))]);
        assert_eq!(
            d.route("acme", Millis(10), Millis(20), false),
            Route::Local { epoch: Epoch(2) }
        );
    }

    #[test]
    fn a_moving_home_is_written_nowhere() {
        let mut d = directory();
        d.lease.renewed(Millis(0), TTL, Epoch(2));
        assert_eq!(
            d.route("initech", Millis(10), Millis(20), false),
            Route::Refuse(Refusal::Moving)
        );
    }
}
