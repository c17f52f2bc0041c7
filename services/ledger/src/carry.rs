//! Commits carry the rows of earlier commits not known to be in both regions (decision
//! 0019). With `EACH_QUORUM` a commit is acknowledged once both regions' datacenters have it;
//! one whose other-region acknowledgement was lost may have reached the home's datacenter
//! alone. A later commit then copies a head with its effect to the other region without its
//! record and entries, and after a failover a retry of it there would find no record and be
//! applied again.
//!
//! So, in two regions, while the ledger's commits reach both datacenters:
//! - each commit lists its key in the head it writes (`WalletHead::unconfirmed`);
//! - the next commit, unless this process saw the commit that wrote the head it read
//!   acknowledged, reads the records of every key listed (from the home's datacenter, where
//!   they were written with that head) and writes them again, with their entries, in its own
//!   batch: one partition's batch, which each replica applies whole, so wherever its head is,
//!   their rows are too;
//! - a commit whose head was acknowledged clears the list: that commit's batch, with all it
//!   carried, is in both datacenters;
//! - housekeeping's commits carry what is listed too (their heads copy those effects), and
//!   list nothing of their own (they have no key to be retried with).
//!
//! A replay, answered from the home's record, may answer a commit whose rows are in the home's
//! datacenter alone (its acknowledgement was lost): it first writes what the head lists, in
//! an empty commit of its own, unless this process saw that head acknowledged.
//!
//! The list is bounded by the lease: a region cut off from the other writes for 3 s at
//! most. The new home's first commit, under `SERIAL`, completes the newest commit in its
//! datacenter, and with it every row that commit carried.

use crate::model::WalletKey;
use crate::service::{Ledger, epoch_of_write};
use crate::store::{Applied, WalletCommit};
use loyalty_common::error::{ErrorCode, ServiceError, ServiceResult};
use loyalty_common::ids::IdempotencyKey;
use loyalty_common::write_scope;
use std::collections::HashMap;
use std::sync::Mutex;

/// Wallets whose acknowledged head versions a process remembers, at most; past it, it
/// forgets them all (the next commit to each carries what its head lists, once).
const REMEMBERED: usize = 100_000;

/// The head versions this process's commits wrote and saw acknowledged, by wallet.
#[derive(Default)]
pub(crate) struct Acknowledged(Mutex<HashMap<WalletKey, u64>>);

impl Acknowledged {
    fn version(&self, wallet: &WalletKey) -> Option<u64> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(wallet).copied()
    }

    /// The commit that wrote `version` was acknowledged (None: its outcome is unknown).
    pub(crate) fn set(&self, wallet: &WalletKey, version: Option<u64>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match version {
            Some(version) => {
                if map.len() >= REMEMBERED {
                    map.clear();
                }
                map.insert(wallet.clone(), version);
            }
            None => {
                map.remove(wallet);
            }
        }
    }
}

impl Ledger {
    /// Sets what `commit` (of `key`, or housekeeping's with none, replacing the head read at
    /// `read_version`) carries and lists, as the module says; nothing in one region, or while
    /// commits reach the home's datacenter alone (the other region failed over, or
    /// `LOCAL_QUORUM` chosen: decision 0019, item 5).
    pub(crate) async fn carry_unconfirmed(
        &self,
        commit: &mut WalletCommit,
        read_version: u64,
        key: Option<&IdempotencyKey>,
    ) -> ServiceResult<()> {
        if write_scope::epoch().is_none() || !self.ports.wallets.commits_reach_both_regions() {
            return Ok(());
        }
        let wallet = commit.head.wallet.clone();
        let listed = std::mem::take(&mut commit.head.unconfirmed);
        if self.acknowledged.version(&wallet) != Some(read_version) {
            for earlier in &listed {
                if let Some(record) = self.ports.wallets.idempotency(&wallet, earlier).await? {
                    commit.carried.push(record);
                }
            }
            commit.head.unconfirmed = listed;
        }
        if let Some(key) = key {
            commit.head.unconfirmed.retain(|listed| listed != key);
            commit.head.unconfirmed.push(key.clone());
        }
        Ok(())
    }

    /// Commits, noting whether the head it wrote was acknowledged by both datacenters (which
    /// the next commit to the wallet needs to know).
    pub(crate) async fn commit_noted(&self, commit: WalletCommit) -> ServiceResult<Applied> {
        let before = self.ports.wallets.commits_reach_both_regions();
        if !before {
            // One region, or one failed over: nothing to note, and no lock on the hot path. A
            // version noted before stays harmless: the wallet's head has moved past it.
            return self.ports.wallets.commit(commit).await;
        }
        let (wallet, version) = (commit.head.wallet.clone(), commit.head.version);
        let committed = self.ports.wallets.commit(commit).await;
        // Both datacenters written to before and after: no failover switched in between.
        let both_regions = self.ports.wallets.commits_reach_both_regions();
        let applied = matches!(committed, Ok(Applied::Yes));
        let acknowledged = (applied && both_regions).then_some(version);
        self.acknowledged.set(&wallet, acknowledged);
        committed
    }

    /// Before a replay in two regions: the commits `wallet`'s head lists as not known to be
    /// in both datacenters are written there, in an empty commit carrying their rows, unless
    /// this process saw that head acknowledged.
    pub(crate) async fn confirm_listed(&self, wallet: &WalletKey) -> ServiceResult<()> {
        if write_scope::epoch().is_none() || !self.ports.wallets.commits_reach_both_regions() {
            return Ok(());
        }
        let Some(head) = self.ports.wallets.head(wallet).await? else {
            return Ok(());
        };
        if head.unconfirmed.is_empty() || self.acknowledged.version(wallet) == Some(head.version) {
            return Ok(());
        }
        let remind_days = self.rules(&wallet.tenant).await?.expiring_soon_days;
        let mut commit = WalletCommit::after(&head, head.clone(), Vec::new(), remind_days);
        commit.head.epoch = epoch_of_write(&head)?;
        for listed in &head.unconfirmed {
            if let Some(record) = self.ports.wallets.idempotency(wallet, listed).await? {
                commit.carried.push(record);
            }
        }
        match self.commit_noted(commit).await? {
            Applied::Yes => Ok(()),
            Applied::Conflict => Err(ServiceError::new(
                ErrorCode::VersionConflict,
                "the wallet is busy; retry with the same idempotency key",
            )),
        }
    }
}
