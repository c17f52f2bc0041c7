//! One outbox for every service: the service's log of committed changes (its store's), each
//! change mapped to its event by the service. What differs between services is only the
//! change type and its mapping; reading, positions and errors are here once.

use crate::publisher::{Outbox, OutboxError, OutboxEvent};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use std::sync::Arc;

/// A service's log of committed changes, as its store keeps it, with the positions its
/// readers saved.
#[async_trait]
pub trait ChangeLog: Send + Sync + 'static {
    type Change: Send + Sync;

    /// Up to `limit` changes after position `seq`, oldest first.
    async fn changes_after(&self, seq: u64, limit: usize) -> ServiceResult<Vec<Self::Change>>;
    /// The last position `reader` saved (0: none).
    async fn position(&self, reader: &str) -> ServiceResult<u64>;
    /// Saves `reader`'s position; durable when this returns.
    async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()>;
    /// The newest position in the log, at least `from` (a position the caller knows is
    /// there).
    async fn log_end(&self, from: u64) -> ServiceResult<u64>;
}

/// The publisher's outbox over a change log: each change becomes the event `event` maps it
/// to.
pub struct LogOutbox<L: ChangeLog + ?Sized> {
    service: &'static str,
    log: Arc<L>,
    event: fn(&L::Change) -> OutboxEvent,
}

impl<L: ChangeLog + ?Sized> LogOutbox<L> {
    /// The outbox of `service` (`ledger`, `member`), whose changes `log` keeps.
    pub fn new(service: &'static str, log: Arc<L>, event: fn(&L::Change) -> OutboxEvent) -> Self {
        Self {
            service,
            log,
            event,
        }
    }
}

fn outbox_error(e: ServiceError) -> OutboxError {
    OutboxError(e.message)
}

#[async_trait]
impl<L: ChangeLog + ?Sized> Outbox for LogOutbox<L> {
    fn service(&self) -> &'static str {
        self.service
    }

    async fn after(&self, seq: u64, limit: usize) -> Result<Vec<OutboxEvent>, OutboxError> {
        let changes = self
            .log
            .changes_after(seq, limit)
            .await
            .map_err(outbox_error)?;
        Ok(changes.iter().map(self.event).collect())
    }

    async fn position(&self, reader: &str) -> Result<u64, OutboxError> {
        self.log.position(reader).await.map_err(outbox_error)
    }

    async fn save_position(&self, reader: &str, seq: u64) -> Result<(), OutboxError> {
        self.log
            .save_position(reader, seq)
            .await
            .map_err(outbox_error)
    }

    async fn log_end(&self, from: u64) -> Result<u64, OutboxError> {
        self.log.log_end(from).await.map_err(outbox_error)
    }
}
