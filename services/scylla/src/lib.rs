//! The shared CQL kit the services' ScyllaDB adapters (decision 0012) are built with: the
//! `[scylla]` settings, a session with the consistency profiles they name, typed statements
//! declared in one place per adapter ([`statements!`]) and their offline check against the
//! migrations ([`cql_check`]), the migration runner `memberd migrate` applies, the outbox
//! relay the ledger and the member service share, and what the adapters' tests share (the
//! test cluster, the conformance harness). Each service's adapter lives in its own crate,
//! beside its ports (`<service>/src/store/cql/`).

pub mod body;
pub mod config;
pub mod conformance;
pub mod cql_check;
pub mod failover;
pub mod lease;
pub mod migrate;
pub mod relay;
pub mod session;
pub mod statements;
pub mod test_cluster;
pub mod testing;

pub use config::ScyllaConfig;
