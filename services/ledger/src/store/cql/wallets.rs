//! The wallet partition: reads by clustering key or range, and every write as one conditional
//! batch (the head with `IF version = ?`, plus the commit's rows and outbox rows). The due row
//! and the relay's hint live in other partitions and are written first: a stale one is
//! harmless, a missing one is not.

use super::rows::{self, ENTRY, IDEMPOTENCY, OUTBOX, REVERSAL, body, decode, encode};
use super::{IDEMPOTENCY_TTL_SECS, ScyllaLedgerStore};
use crate::model::{Entry, IdempotencyRecord, ReversalTracker, WalletHead, WalletKey};
use crate::store::{Applied, StoredIdempotency, WalletCommit, WalletRepository, encode_head};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{EntryId, IdempotencyKey};
use loyalty_scylla::relay::OutboxPartitions;
use loyalty_scylla::statements::BatchWrite;
use scylla::client::execution_profile::ExecutionProfileHandle;
use scylla::statement::Consistency;
use std::collections::HashMap;

/// Keys in one `IN`: ScyllaDB's default limit for clustering keys.
const IN_LIMIT: usize = 100;

impl ScyllaLedgerStore {
    /// The profile a wallet's commit runs with: its first in a new home runs its Paxos round
    /// in both datacenters (`Cluster::ledger_handover_writes`), unless the other region is
    /// failed over (its datacenter lost, so no such round could finish).
    fn commit_profile(&self, commit: &WalletCommit) -> &ExecutionProfileHandle {
        let failed_over = self.cluster.failover.ledger_writes.failed_over();
        match commit.first_in_new_home() && !failed_over {
            true => &self.cluster.ledger_handover_writes,
            false => &self.cluster.ledger_writes,
        }
    }

    async fn wallet_row(
        &self,
        wallet: &WalletKey,
        kind: &str,
        id: Vec<u8>,
    ) -> ServiceResult<Option<Vec<u8>>> {
        let (tenant, member) = rows::partition(wallet);
        let row = self
            .statements
            .wallet_row
            .first(self.session(), (tenant, member, kind.to_string(), id))
            .await?;
        row.map(|(bytes,)| body(bytes, kind)).transpose()
    }

    /// The entries an idempotency record names, in its order; one missing is corruption,
    /// since they were written in the record's own batch.
    async fn entries_named(
        &self,
        wallet: &WalletKey,
        ids: &[EntryId],
    ) -> ServiceResult<Vec<Entry>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (tenant, member) = rows::partition(wallet);
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| rows::entry_id(*id)).collect();
        let mut found: HashMap<EntryId, Entry> = HashMap::new();
        // ScyllaDB refuses more than 100 clustering keys in one IN by default
        // (max_clustering_key_restrictions_per_query).
        for chunk in keys.chunks(IN_LIMIT) {
            for (id, bytes) in self
                .statements
                .entries_by_id
                .rows(
                    self.session(),
                    (tenant.clone(), member.clone(), chunk.to_vec()),
                )
                .await?
            {
                found.insert(rows::entry_id_from(&id)?, decode(&body(bytes, "entry")?)?);
            }
        }
        ids.iter()
            .map(|id| {
                found.remove(id).ok_or_else(|| {
                    ServiceError::internal(format!("entry {id} of a committed record is missing"))
                })
            })
            .collect()
    }

    /// The batch of a commit, every row encoded before anything is sent.
    fn commit_batch(&self, commit: &WalletCommit) -> ServiceResult<BatchWrite> {
        let s = &self.statements;
        let wallet = &commit.head.wallet;
        let (tenant, member) = rows::partition(wallet);
        let row = |kind: &str, id: Vec<u8>, body: Vec<u8>| {
            (tenant.clone(), member.clone(), kind.to_string(), id, body)
        };
        let version = rows::to_bigint(commit.head.version, "wallet version")?;
        let head = encode_head(&commit.head)?;
        let mut batch = BatchWrite::default();
        if commit.expected_version == 0 {
            batch.push(
                &s.create_head,
                (version, head, tenant.clone(), member.clone()),
            );
        } else {
            let expected = rows::to_bigint(commit.expected_version, "wallet version")?;
            batch.push(
                &s.replace_head,
                (version, head, tenant.clone(), member.clone(), expected),
            );
        }
        for entry in &commit.entries {
            batch.push(
                &s.insert_row,
                row(ENTRY, rows::entry_id(entry.id), encode(entry)?),
            );
        }
        for tracker in &commit.reversals {
            if let Some(target) = tracker.target {
                batch.push(
                    &s.insert_row,
                    row(REVERSAL, rows::entry_id(target), encode(tracker)?),
                );
            }
        }
        // Earlier commits' rows, again (`crate::carry`): the same values, so harmless where
        // they are already.
        for record in &commit.carried {
            for entry in &record.outcome.entries {
                batch.push(
                    &s.insert_row,
                    row(ENTRY, rows::entry_id(entry.id), encode(entry)?),
                );
            }
        }
        for record in commit.carried.iter().chain(&commit.idempotency) {
            let stored = StoredIdempotency::of(record);
            let (tenant, member, kind, id, body) = row(
                IDEMPOTENCY,
                record.key.as_str().as_bytes().to_vec(),
                encode(&stored)?,
            );
            batch.push(
                &s.insert_row_expiring,
                (tenant, member, kind, id, body, IDEMPOTENCY_TTL_SECS),
            );
        }
        for (index, entry) in commit.entries.iter().enumerate() {
            let position = rows::outbox_position(commit.head.version, index)?;
            batch.push(
                &s.insert_row,
                row(
                    OUTBOX,
                    rows::position_id(position),
                    rows::outbox_body(wallet, entry)?,
                ),
            );
        }
        Ok(batch)
    }
}

#[async_trait]
impl WalletRepository for ScyllaLedgerStore {
    async fn head(&self, wallet: &WalletKey) -> ServiceResult<Option<WalletHead>> {
        let row = self
            .statements
            .head
            .first(self.session(), rows::partition(wallet))
            .await?;
        match row {
            Some(row) => rows::head_from_row(row),
            None => Ok(None),
        }
    }

    async fn idempotency(
        &self,
        wallet: &WalletKey,
        key: &IdempotencyKey,
    ) -> ServiceResult<Option<IdempotencyRecord>> {
        let id = key.as_str().as_bytes().to_vec();
        let Some(bytes) = self.wallet_row(wallet, IDEMPOTENCY, id).await? else {
            return Ok(None);
        };
        let stored: StoredIdempotency = decode(&bytes)?;
        let entries = self.entries_named(wallet, &stored.entries).await?;
        Ok(Some(stored.into_record(key.clone(), entries)))
    }

    async fn entry(&self, wallet: &WalletKey, id: EntryId) -> ServiceResult<Option<Entry>> {
        self.wallet_row(wallet, ENTRY, rows::entry_id(id))
            .await?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    async fn reversal(
        &self,
        wallet: &WalletKey,
        target: EntryId,
    ) -> ServiceResult<Option<ReversalTracker>> {
        self.wallet_row(wallet, REVERSAL, rows::entry_id(target))
            .await?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    async fn history(
        &self,
        wallet: &WalletKey,
        before: Option<EntryId>,
        limit: usize,
    ) -> ServiceResult<Vec<Entry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (tenant, member) = rows::partition(wallet);
        let s = &self.statements;
        // The table clusters entries newest first, so the first rows are the page.
        let page = match before {
            None => {
                s.history_newest
                    .rows(self.session(), (tenant, member, rows::limit(limit)))
                    .await?
            }
            Some(id) => {
                let cursor = rows::entry_id(id);
                s.history_before
                    .rows(self.session(), (tenant, member, cursor, rows::limit(limit)))
                    .await?
            }
        };
        page.into_iter()
            .map(|(bytes,)| decode(&body(bytes, "entry")?))
            .collect()
    }

    fn commits_reach_both_regions(&self) -> bool {
        let writes = &self.cluster.failover.ledger_writes;
        writes.consistency() == Consistency::EachQuorum && !writes.failed_over()
    }

    async fn commit(&self, commit: WalletCommit) -> ServiceResult<Applied> {
        if commit.expected_version.checked_add(1) != Some(commit.head.version) {
            return Ok(Applied::Conflict);
        }
        let batch = self.commit_batch(&commit)?;
        let wallet = &commit.head.wallet;
        let (tenant, member) = rows::partition(wallet);
        // Both pointers at this partition go first, side by side.
        let due = async {
            match commit.due_at {
                Some(at) => self.write_due(wallet, at).await,
                None => Ok(()),
            }
        };
        let hint = async {
            match commit.entries.len().checked_sub(1) {
                Some(last) => {
                    let position = rows::outbox_position(commit.head.version, last)?;
                    self.relay.hint(&tenant, &member, position).await
                }
                None => Ok(()),
            }
        };
        tokio::try_join!(due, hint)?;
        let applied = batch
            .apply(self.session(), Some(self.commit_profile(&commit)))
            .await?;
        Ok(if applied {
            Applied::Yes
        } else {
            Applied::Conflict
        })
    }
}

/// The relay reads the outbox rows commits wrote into their wallets' partitions.
#[async_trait]
impl OutboxPartitions for ScyllaLedgerStore {
    async fn outbox_rows(
        &self,
        tenant: &str,
        member: &str,
        after: u64,
        limit: usize,
    ) -> ServiceResult<Vec<(u64, Vec<u8>)>> {
        let found = self
            .statements
            .outbox_after
            .rows(
                self.session(),
                (
                    tenant.to_string(),
                    member.to_string(),
                    rows::position_id(after),
                    i32::try_from(limit).unwrap_or(i32::MAX),
                ),
            )
            .await?;
        // Read in reverse clustering order: oldest first, as the relay wants them.
        found
            .into_iter()
            .map(|(id, bytes)| Ok((rows::position_from_id(&id)?, body(bytes, "outbox row")?)))
            .collect()
    }

    async fn forget_outbox(&self, tenant: &str, member: &str, upto: u64) -> ServiceResult<()> {
        self.statements
            .outbox_forget
            .run(
                self.session(),
                (
                    tenant.to_string(),
                    member.to_string(),
                    rows::position_id(upto),
                ),
            )
            .await
    }
}
