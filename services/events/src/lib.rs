//! Events for partner systems and for the platform's own consumers: the envelope
//! ([`envelope`]), the bus port ([`bus`]) and durable subscriptions ([`subscribe`]), with two
//! adapters: NATS JetStream ([`nats`]) and the in-process bus of the embedded default
//! ([`memory`]).

pub mod bus;
pub mod config;
pub mod envelope;
pub mod memory;
pub mod memory_consumer;
pub mod nats;
mod nats_consumer;
pub mod subscribe;
#[cfg(feature = "testing")]
pub mod testing;

pub use bus::{BusError, EventBus, Published};
pub use config::{BusKind, EventsConfig};
pub use envelope::Envelope;
