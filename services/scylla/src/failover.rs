//! What changes in a region while the other region is failed over (decision 0019). The
//! survivor holds the lost region's lease row, and that region is fenced until it is rebuilt
//! from the survivor's data, so nothing is gained by waiting for its datacenter:
//! - ledger writes and every other write configured at `EACH_QUORUM` go at `LOCAL_QUORUM`;
//! - the outbox relay's conditional writes go at `LOCAL_SERIAL` instead of `SERIAL` (a
//!   majority of every replica, which a lost datacenter takes away), so events go on.
//!
//! After the failback, each goes back to its configured level. And a region that does not
//! hold its own lease (fenced, or cut off) runs no relay passes: its datacenter may be stale,
//! and its `SERIAL` rounds could otherwise meet the survivor's `LOCAL_SERIAL` ones on
//! disjoint majorities.

use scylla::client::execution_profile::{ExecutionProfile, ExecutionProfileHandle};
use scylla::statement::{Consistency, SerialConsistency};
use std::sync::atomic::{AtomicBool, Ordering};

/// A statement profile with two settings: as configured, and while the other region is
/// failed over.
pub struct Switched {
    /// The handle the statements run with: re-pointed, never replaced.
    handle: ExecutionProfileHandle,
    configured: ExecutionProfile,
    failed_over: ExecutionProfile,
    now_failed_over: AtomicBool,
}

impl Switched {
    fn new(
        handle: ExecutionProfileHandle,
        configured: ExecutionProfile,
        failed_over: ExecutionProfile,
    ) -> Self {
        Self {
            handle,
            configured,
            failed_over,
            now_failed_over: AtomicBool::new(false),
        }
    }

    /// Points the statements at the failed-over setting or back. True when this changed it.
    fn set(&self, failed_over: bool) -> bool {
        if self.now_failed_over.swap(failed_over, Ordering::SeqCst) == failed_over {
            return false;
        }
        let profile = match failed_over {
            true => &self.failed_over,
            false => &self.configured,
        };
        // Every clone of a handle shares what it points at.
        self.handle.clone().map_to_another_profile(profile.clone());
        true
    }

    pub fn consistency(&self) -> Consistency {
        self.handle.to_profile().get_consistency()
    }

    pub fn serial_consistency(&self) -> Option<SerialConsistency> {
        self.handle.to_profile().get_serial_consistency()
    }

    /// Whether the statements run at the failed-over setting now.
    pub fn failed_over(&self) -> bool {
        self.now_failed_over.load(Ordering::SeqCst)
    }
}

pub struct Failover {
    /// The ledger's writes (`scylla.ledger_write_consistency`), `LOCAL_QUORUM` while failed
    /// over.
    pub ledger_writes: Switched,
    /// Every other write (`scylla.write_consistency`, the session's default profile),
    /// `LOCAL_QUORUM` while failed over.
    pub writes: Switched,
    /// The relay's lease and change log, `SERIAL`, `LOCAL_SERIAL` while failed over.
    pub relay_writes: Switched,
    /// Whether this region holds its own lease (always, outside two regions).
    own_lease: AtomicBool,
}

impl Failover {
    /// Each handle starts at its configured profile.
    pub fn new(
        (ledger, ledger_profile): (ExecutionProfileHandle, ExecutionProfile),
        (writes, writes_profile): (ExecutionProfileHandle, ExecutionProfile),
        (relay, relay_profile): (ExecutionProfileHandle, ExecutionProfile),
    ) -> Self {
        let local_quorum = |profile: &ExecutionProfile| {
            profile
                .to_builder()
                .consistency(Consistency::LocalQuorum)
                .build()
        };
        let (ledger_failed_over, writes_failed_over) =
            (local_quorum(&ledger_profile), local_quorum(&writes_profile));
        let local_serial = relay_profile
            .to_builder()
            .serial_consistency(Some(SerialConsistency::LocalSerial))
            .build();
        Self {
            ledger_writes: Switched::new(ledger, ledger_profile, ledger_failed_over),
            writes: Switched::new(writes, writes_profile, writes_failed_over),
            relay_writes: Switched::new(relay, relay_profile, local_serial),
            own_lease: AtomicBool::new(true),
        }
    }

    /// Whether the other region is failed over (this region holds its lease row). True when
    /// this changed a level.
    pub fn other_region_failed_over(&self, failed_over: bool) -> bool {
        let ledger = self.ledger_writes.set(failed_over);
        let writes = self.writes.set(failed_over);
        let relay = self.relay_writes.set(failed_over);
        ledger || writes || relay
    }

    /// Whether this region holds its own lease, as last read; the relay passes only while it
    /// does. True when this changed it.
    pub fn own_lease_held(&self, held: bool) -> bool {
        self.own_lease.swap(held, Ordering::SeqCst) != held
    }

    pub fn may_relay(&self) -> bool {
        self.own_lease.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(consistency: Consistency) -> (ExecutionProfileHandle, ExecutionProfile) {
        let profile = ExecutionProfile::builder()
            .consistency(consistency)
            .serial_consistency(Some(SerialConsistency::Serial))
            .build();
        (profile.clone().into_handle(), profile)
    }

    #[test]
    fn configured_levels_until_the_other_region_is_failed_over_then_back() {
        let (ledger, writes, relay) = (
            profile(Consistency::EachQuorum),
            profile(Consistency::EachQuorum),
            profile(Consistency::LocalQuorum),
        );
        let handles = [ledger.0.clone(), writes.0.clone(), relay.0.clone()];
        let failover = Failover::new(ledger, writes, relay);
        assert_eq!(failover.writes.consistency(), Consistency::EachQuorum);
        assert!(failover.other_region_failed_over(true));
        assert!(!failover.other_region_failed_over(true), "no change");
        let consistency = |n: usize| handles[n].to_profile().get_consistency();
        let serial = |n: usize| handles[n].to_profile().get_serial_consistency();
        // The statements' handles follow.
        assert_eq!(consistency(0), Consistency::LocalQuorum);
        assert_eq!(consistency(1), Consistency::LocalQuorum);
        assert_eq!(serial(2), Some(SerialConsistency::LocalSerial));
        assert!(failover.other_region_failed_over(false));
        assert_eq!(consistency(0), Consistency::EachQuorum);
        assert_eq!(consistency(1), Consistency::EachQuorum);
        assert_eq!(serial(2), Some(SerialConsistency::Serial));
    }

    #[test]
    fn the_relay_passes_only_while_the_region_holds_its_lease() {
        let failover = Failover::new(
            profile(Consistency::LocalQuorum),
            profile(Consistency::LocalQuorum),
            profile(Consistency::LocalQuorum),
        );
        assert!(failover.may_relay(), "outside two regions, always");
        assert!(failover.own_lease_held(false));
        assert!(!failover.may_relay());
        assert!(!failover.own_lease_held(false), "no change");
        assert!(failover.own_lease_held(true));
        assert!(failover.may_relay());
    }
}
