//! Events for partner systems and for the platform's own consumers: the envelope
//! ([`envelope`]), the bus port ([`bus`]), the exactly-once publisher of a service's outbox
//! ([`publisher`]) over each service's change log ([`outbox`]) and durable subscriptions ([`subscribe`]), with two adapters: NATS
//! JetStream ([`nats`]) and the in-process bus of the embedded default, stored on local disk
//! ([`embedded`]). Each event carries the trace context of the request that made it
//! ([`trace`]).

pub mod bus;
pub mod config;
mod consumer_metrics;
pub mod embedded;
pub mod envelope;
pub mod nats;
mod nats_consumer;
pub mod outbox;
pub mod publisher;
pub mod subscribe;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace;

pub use bus::{BusError, EventBus, Published};
pub use config::{BusKind, EventsConfig};
pub use envelope::Envelope;
