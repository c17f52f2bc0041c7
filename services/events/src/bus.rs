//! The port every service publishes through. Adapters: [`crate::nats::NatsBus`] (JetStream) and
//! [`crate::embedded::InProcessBus`] (the embedded default, no server).

use crate::envelope::Envelope;
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus cannot be reached or did not confirm in time. Publication retries; nothing is
    /// lost, because the publisher advances only past confirmed events.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    /// The bus refused the request (bad stream settings, permissions). Retrying will not help
    /// until the configuration is fixed.
    #[error("event bus refused the request: {0}")]
    Refused(String),
}

/// What identifies an event already on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub sequence: u64,
    pub id: String,
}

#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Creates or updates whatever the bus needs to hold `service`'s events (a JetStream
    /// stream). Idempotent; the publisher calls it until it succeeds.
    async fn prepare(&self, service: &str) -> Result<(), BusError>;

    /// Stores `events` in order and returns once every one is stored. An event whose id is
    /// already stored is confirmed without being stored again. Takes the events by value, so
    /// an in-process bus keeps them without copying.
    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError>;

    /// The newest event of `service` the bus holds, if any. A publisher that restarts resumes
    /// after it, so a crash between publishing and saving its position does not publish anything
    /// twice, however long the restart takes.
    async fn last_published(&self, service: &str) -> Result<Option<Published>, BusError>;

    /// Whether the bus is reachable now (for `/readyz`). Writes do not depend on it.
    fn is_connected(&self) -> bool;
}
