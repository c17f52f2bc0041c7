//! The consistency of the ledger's writes, switched while the other region is failed over
//! (decision 0019, item 5). With `scylla.ledger_write_consistency = "EACH_QUORUM"` a ledger
//! write needs a quorum in every datacenter, so once a region is lost the survivor's writes
//! would all fail. After the survivor has taken the lost region over, that region is fenced
//! until it is rebuilt from the survivor's data, so nothing is gained by waiting for it: the
//! writes go at `LOCAL_QUORUM` until it is failed back, then at the configured level again.

use scylla::client::execution_profile::{ExecutionProfile, ExecutionProfileHandle};
use scylla::statement::Consistency;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct LedgerWrites {
    /// The handle every ledger write statement runs with: re-pointed, never replaced.
    handle: ExecutionProfileHandle,
    configured: ExecutionProfile,
    local: ExecutionProfile,
    failed_over: AtomicBool,
}

impl LedgerWrites {
    /// `handle` starts at `configured`; `local` is the same at `LOCAL_QUORUM`.
    pub fn new(handle: ExecutionProfileHandle, configured: ExecutionProfile) -> Self {
        let local = configured
            .to_builder()
            .consistency(Consistency::LocalQuorum)
            .build();
        Self {
            handle,
            configured,
            local,
            failed_over: AtomicBool::new(false),
        }
    }

    /// Whether the other region is failed over (this region holds its lease row): the
    /// writes go at `LOCAL_QUORUM` while it is. True when this changed the level.
    pub fn other_region_failed_over(&self, failed_over: bool) -> bool {
        if self.failed_over.swap(failed_over, Ordering::SeqCst) == failed_over {
            return false;
        }
        let profile = if failed_over {
            &self.local
        } else {
            &self.configured
        };
        // Every clone of a handle shares what it points at.
        self.handle.clone().map_to_another_profile(profile.clone());
        true
    }

    /// The level ledger writes go at now.
    pub fn consistency(&self) -> Consistency {
        self.handle.to_profile().get_consistency()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_quorum_until_the_other_region_is_failed_over_then_back() {
        let configured = ExecutionProfile::builder()
            .consistency(Consistency::EachQuorum)
            .build();
        let handle = configured.clone().into_handle();
        let writes = LedgerWrites::new(handle.clone(), configured);
        assert_eq!(writes.consistency(), Consistency::EachQuorum);
        assert!(writes.other_region_failed_over(true));
        assert!(!writes.other_region_failed_over(true), "no change");
        assert_eq!(writes.consistency(), Consistency::LocalQuorum);
        assert_eq!(
            handle.to_profile().get_consistency(),
            Consistency::LocalQuorum,
            "the statements' handle follows"
        );
        assert!(writes.other_region_failed_over(false));
        assert_eq!(
            handle.to_profile().get_consistency(),
            Consistency::EachQuorum
        );
    }
}
