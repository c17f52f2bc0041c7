//! The control keyspace of the simulation: region leases and tenant homes, changed only by a
//! site that reaches a majority of the three (the caller checks), as `SERIAL` rounds are.

use loyalty_region::lease::{RENEWED_LATELY, TTL};
use loyalty_region::{Epoch, Home, Region};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseRow {
    /// Held until this time (true time, ms): the row's TTL.
    Held(u64),
    /// Taken over by the other region: the region's tenants are homed there.
    Taken,
}

pub struct Control {
    regions: [Region; 2],
    leases: [Option<LeaseRow>; 2],
    homes: BTreeMap<String, Home>,
    /// Each tenant's region before any failover, for the failback.
    origin: BTreeMap<String, usize>,
    pub epoch: Epoch,
    /// Failed over: the region's datacenter is not written until it is rebuilt.
    pub lost: [bool; 2],
}

impl Control {
    pub fn new(regions: &[Region; 2], tenants: &[(&str, usize)]) -> Self {
        let homes = tenants
            .iter()
            .map(|(t, r)| {
                let home = Home {
                    region: regions[*r].clone(),
                    epoch: Epoch(0),
                    moving: false,
                };
                (t.to_string(), home)
            })
            .collect();
        Self {
            regions: regions.clone(),
            leases: [None, None],
            homes,
            origin: tenants.iter().map(|(t, r)| (t.to_string(), *r)).collect(),
            epoch: Epoch(0),
            lost: [false, false],
        }
    }

    /// `UPDATE ... USING TTL 6 ... IF holder = me` (or `INSERT ... IF NOT EXISTS` once it
    /// expired): whether the region holds its lease now. The row expires `TTL` after the
    /// whole second the write arrived in, as on ScyllaDB and Cassandra.
    pub fn renew(&mut self, region: usize, now: u64) -> bool {
        match self.leases[region] {
            Some(LeaseRow::Taken) => false,
            _ => {
                self.leases[region] = Some(LeaseRow::Held(now / 1_000 * 1_000 + TTL.0));
                true
            }
        }
    }

    /// Whether `region` renewed its own row lately, as the other region reads it.
    pub fn renewing(&self, region: usize, now: u64) -> bool {
        matches!(self.leases[region], Some(LeaseRow::Held(until)) if until > now + RENEWED_LATELY.0)
    }

    pub fn holds(&self, region: usize) -> bool {
        !matches!(self.leases[region], Some(LeaseRow::Taken))
    }

    /// Takes `from`'s lease row if it has expired, and homes its tenants in `to`. A region
    /// that was itself failed away from has a stale datacenter until it is rebuilt: it takes
    /// nothing over.
    pub fn take_over(&mut self, from: usize, to: usize, now: u64) -> bool {
        if self.lost[to] {
            return false;
        }
        match self.leases[from] {
            Some(LeaseRow::Held(until)) if until > now => return false,
            Some(LeaseRow::Taken) => return false,
            _ => {}
        }
        self.leases[from] = Some(LeaseRow::Taken);
        self.lost[from] = true;
        self.epoch = self.epoch.next();
        for home in self.homes.values_mut() {
            if home.region == self.regions[from] {
                home.region = self.regions[to].clone();
                home.epoch = self.epoch;
            }
        }
        true
    }

    /// A failback's first step, once `to`'s datacenter has been rebuilt: its lease row is
    /// freed, it is written again, and its tenants are marked moving.
    pub fn start_move(&mut self, to: usize) {
        self.leases[to] = None;
        self.lost[to] = false;
        self.epoch = self.epoch.next();
        for (tenant, home) in &mut self.homes {
            if self.origin[tenant] == to {
                home.moving = true;
                home.epoch = self.epoch;
            }
        }
    }

    /// The failback's second step, after the quiet time: the tenants are homed in `to`.
    pub fn finish_move(&mut self, to: usize) {
        self.epoch = self.epoch.next();
        for (tenant, home) in &mut self.homes {
            if self.origin[tenant] == to {
                home.region = self.regions[to].clone();
                home.moving = false;
                home.epoch = self.epoch;
            }
        }
    }

    pub fn homes(&self) -> (Epoch, Vec<(String, Home)>) {
        let homes = self.homes.iter().map(|(t, h)| (t.clone(), h.clone()));
        (self.epoch, homes.collect())
    }

    pub fn home_index(&self, tenant: &str) -> usize {
        usize::from(self.homes[tenant].region != self.regions[0])
    }
}
