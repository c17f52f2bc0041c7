//! Transfer records, one partition each, changed with `IF revision = ?`; and `open_transfers`,
//! the index of unfinished ones by the day they started. The index row goes in before every
//! unfinished revision is written and comes out after the final one, so an unfinished
//! transfer is always listed; a row whose transfer is final (or long absent) is dropped by the
//! reader that finds it.

use super::ScyllaLedgerStore;
use super::low_water::EmptyPrefix;
use super::rows::{self, encode};
use crate::store::{Applied, TransferRepository};
use crate::transfer::TransferRecord;
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use loyalty_common::{ServiceError, Timestamp};
use loyalty_scylla::statements::BatchWrite;
use scylla::value::CqlTimestamp;

/// An index row whose transfer does not exist may be one whose first write is still on its
/// way; only rows older than this are taken for debris of a write that never applied.
const ABSENT_GRACE_MILLIS: i64 = 3_600_000;
/// Days a transfer's start may lie ahead of this machine's clock (another machine's clock,
/// or a test's): the reader looks this far past today.
const DAYS_AHEAD: i32 = 1;
/// Days behind today that may still get index rows (clocks behind this one): the low-water
/// mark never passes them.
const DAYS_SETTLING: i32 = 2;

fn wall_clock() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp(millis)
}

impl ScyllaLedgerStore {
    /// Removes an index row; a failure only leaves a stale row, which its reader drops.
    async fn drop_open_row(&self, row: (i32, CqlTimestamp, String, String)) {
        if let Err(err) = self
            .statements
            .open_transfer_remove
            .run(self.session(), row)
            .await
        {
            tracing::warn!(error = %err, "a stale open-transfer row is left for the next reader");
        }
    }
}

#[async_trait]
impl TransferRepository for ScyllaLedgerStore {
    async fn get(
        &self,
        tenant: &TenantId,
        transfer_id: &str,
    ) -> ServiceResult<Option<TransferRecord>> {
        let row = self
            .statements
            .transfer
            .first(
                self.session(),
                (tenant.as_str().to_string(), transfer_id.to_string()),
            )
            .await?;
        row.map(rows::transfer_from_row).transpose()
    }

    async fn put(&self, record: TransferRecord) -> ServiceResult<Applied> {
        if record.revision == 0 {
            return Ok(Applied::Conflict);
        }
        let s = &self.statements;
        let tenant = record.tenant.as_str().to_string();
        let id = record.transfer_id.clone();
        let revision = rows::to_bigint(record.revision, "transfer revision")?;
        let body = encode(&record)?;
        let open_row = rows::open_transfer_row(&record)?;
        let mut batch = BatchWrite::default();
        if record.revision == 1 {
            batch.push(&s.create_transfer, (tenant, id, revision, body));
        } else {
            batch.push(
                &s.replace_transfer,
                (revision, body, tenant, id, revision - 1),
            );
        }
        let is_final = record.state.is_final();
        if !is_final {
            self.open_transfers_low_water
                .cover(self.session(), &self.statements, open_row.0)
                .await?;
            self.write_as_ledger(&s.open_transfer_add, open_row.clone())
                .await?;
        }
        if !batch
            .apply(self.session(), Some(&self.cluster.ledger_writes))
            .await?
        {
            return Ok(Applied::Conflict);
        }
        if is_final {
            self.drop_open_row(open_row).await;
        }
        Ok(Applied::Yes)
    }

    async fn unfinished(&self, limit: usize) -> ServiceResult<Vec<TransferRecord>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let low_water = &self.open_transfers_low_water;
        let Some(start) = low_water.read(self.session(), &self.statements).await? else {
            return Ok(out); // No transfer was ever indexed.
        };
        let now = wall_clock();
        let today = rows::day_bucket(now)?;
        let mut prefix = EmptyPrefix::new(start, today.saturating_sub(DAYS_SETTLING));
        'days: for day in start..=today.saturating_add(DAYS_AHEAD) {
            let found = self
                .statements
                .open_transfers_in
                .rows(self.session(), (day, rows::limit(limit - out.len())))
                .await?;
            prefix.saw(day, found.is_empty());
            for (created_at, tenant, id) in found {
                let row = (day, created_at, tenant, id);
                let tenant = TenantId::parse(row.2.as_str()).map_err(|e| {
                    ServiceError::internal(format!("a stored tenant is malformed: {}", e.message))
                })?;
                match self.get(&tenant, &row.3).await? {
                    Some(record) if !record.state.is_final() => out.push(record),
                    Some(_) => self.drop_open_row(row).await,
                    None if now.0.saturating_sub(created_at.0) > ABSENT_GRACE_MILLIS => {
                        self.drop_open_row(row).await
                    }
                    None => {}
                }
                if out.len() >= limit {
                    break 'days;
                }
            }
        }
        low_water
            .raise(self.session(), &self.statements, start, prefix.next_start())
            .await?;
        Ok(out)
    }
}
