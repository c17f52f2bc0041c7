//! What every ScyllaDB adapter shares (decision 0012): the `[scylla]` settings, a session
//! with the consistency profiles they name, and the CQL migrations `memberd migrate`
//! applies. The adapters themselves keep only their statements and row mapping.

pub mod config;
pub mod migrate;
pub mod session;

pub use config::ScyllaConfig;
