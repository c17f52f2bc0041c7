//! What every ScyllaDB adapter shares (decision 0012): the `[scylla]` settings, a session
//! with the consistency profiles they name, the CQL migrations `memberd migrate` applies,
//! typed statements declared in one place per adapter, and their offline check against
//! the migrations.

pub mod config;
pub mod cql_check;
pub mod identity;
pub mod migrate;
pub mod session;
pub mod statements;
pub mod testing;

pub use config::ScyllaConfig;
