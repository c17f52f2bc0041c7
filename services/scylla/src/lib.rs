//! The ScyllaDB adapters (decision 0012) of identity, the ledger and the member service,
//! the outbox relay, and what they share: the `[scylla]` settings, a session with the
//! consistency profiles they name, the CQL migrations `memberd migrate` applies, typed
//! statements declared in one place per adapter, and their offline check against the
//! migrations.

pub mod body;
pub mod config;
pub mod cql_check;
pub mod identity;
pub mod ledger;
pub mod member;
pub mod migrate;
pub mod relay;
pub mod session;
pub mod statements;
pub mod test_cluster;
pub mod testing;

pub use config::ScyllaConfig;
