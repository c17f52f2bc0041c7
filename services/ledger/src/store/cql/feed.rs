//! The change feed: the relay's change log of this keyspace. Each commit wrote its entries as
//! outbox rows in its wallet's partition (see `wallets`); the relay numbers them gap-free in
//! the order it hands them on, and this store is the source it reads them from.

use super::ScyllaLedgerStore;
use super::rows;
use crate::store::{Change, ChangeFeed};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;

#[async_trait]
impl ChangeFeed for ScyllaLedgerStore {
    async fn changes_after(&self, seq: u64, limit: usize) -> ServiceResult<Vec<Change>> {
        let logged = self.relay.changes_after(self, seq, limit).await?;
        logged
            .into_iter()
            .map(|change| {
                let ((wallet, entry), trace) = rows::outbox_from_body(&change.body)?;
                if wallet.tenant.as_str() != change.tenant
                    || wallet.member.as_str() != change.member
                {
                    return Err(ServiceError::internal(format!(
                        "change {} names another wallet than its outbox row's",
                        change.seq
                    )));
                }
                Ok(Change {
                    seq: change.seq,
                    wallet,
                    entry,
                    trace,
                })
            })
            .collect()
    }

    async fn position(&self, reader: &str) -> ServiceResult<u64> {
        self.relay.position(reader).await
    }

    async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()> {
        self.relay.save_position(reader, seq).await
    }

    async fn log_end(&self, from: u64) -> ServiceResult<u64> {
        self.relay.log_end(from).await
    }
}
