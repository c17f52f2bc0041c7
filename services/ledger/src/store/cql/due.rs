//! The due index: `due_wallets`, one partition per hour of due times, read from the low-water
//! hour up to the hour of `until`. Rows are written before the commit that needs them (see
//! `wallets`), so a wallet with work due is always listed; a row that fired is removed by
//! `reschedule` after the wallet's next one is written.

use super::ScyllaLedgerStore;
use super::low_water::EmptyPrefix;
use super::rows;
use crate::model::WalletKey;
use crate::store::{DueIndex, DueWallet};
use async_trait::async_trait;
use loyalty_common::Timestamp;
use loyalty_common::error::ServiceResult;
use scylla::value::CqlTimestamp;

/// Hours before the hour of `until` that may still get rows (a writer's clock behind the
/// reader's): the low-water mark never passes them. Due times are always ahead of their
/// writer's clock, so only clock skew can put a row there.
const HOURS_SETTLING: i32 = 1;

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl ScyllaLedgerStore {
    /// Lists `wallet` as due at `at`, in the hour bucket of `at`. A time already past (a
    /// reminder whose window opened before the earn that set it) is listed as due
    /// [`HOURS_SETTLING`] ago instead: readers raise the low-water mark past older buckets
    /// they found empty, and a row written there after such a scan would never be read.
    pub(super) async fn write_due(&self, wallet: &WalletKey, at: Timestamp) -> ServiceResult<()> {
        let settled = wall_clock_ms() - i64::from(HOURS_SETTLING) * 3_600_000;
        let row = rows::due_row(&DueWallet {
            at: Timestamp(at.0.max(settled)),
            wallet: wallet.clone(),
        })?;
        self.due_low_water
            .cover(self.session(), &self.statements, row.0)
            .await?;
        self.write_as_ledger(&self.statements.due_add, row).await
    }
}

#[async_trait]
impl DueIndex for ScyllaLedgerStore {
    async fn due(&self, until: Timestamp, limit: usize) -> ServiceResult<Vec<DueWallet>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let low_water = &self.due_low_water;
        let Some(start) = low_water.read(self.session(), &self.statements).await? else {
            return Ok(out); // No wallet was ever due.
        };
        let last = rows::hour_bucket(until)?;
        let mut prefix = EmptyPrefix::new(start, last.saturating_sub(HOURS_SETTLING));
        for hour in start..=last {
            let found = self
                .statements
                .due_in
                .rows(
                    self.session(),
                    (hour, CqlTimestamp(until.0), rows::limit(limit - out.len())),
                )
                .await?;
            prefix.saw(hour, found.is_empty());
            for row in found {
                out.push(rows::due_from_row(row)?);
            }
            if out.len() >= limit {
                break;
            }
        }
        low_water
            .raise(self.session(), &self.statements, start, prefix.next_start())
            .await?;
        Ok(out)
    }

    async fn reschedule(&self, item: &DueWallet, next: Option<Timestamp>) -> ServiceResult<()> {
        if next == Some(item.at) {
            return Ok(());
        }
        // The next row first: between the two writes the wallet is listed twice, never not
        // at all.
        if let Some(at) = next {
            self.write_due(&item.wallet, at).await?;
        }
        self.statements
            .due_remove
            .run(self.session(), rows::due_row(item)?)
            .await
    }
}
