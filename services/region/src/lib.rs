//! Two regions, each writing the tenants homed in it (decision 0019). This crate is the logic
//! of it without any I/O, so that the gateway, the region keeper and a deterministic
//! simulation (`tests/simulation.rs`) all run the same code:
//!
//! - [`model`]: regions, epochs, a tenant's home;
//! - [`lease`]: how long a region may write after renewing its lease in the control keyspace;
//! - [`route`]: where a write for a tenant goes: here, forwarded to its home, or refused;
//! - [`background`]: which region does a tenant's background work (a service's own writes);
//! - [`keeper`]: when the keeper renews its region's lease, and when it takes over the other
//!   region's tenants;
//! - [`control`]: the control keyspace that decides leases and homes, as a port, with its
//!   CQL adapter; [`schema`]: its migrations.
//!
//! Times are [`Millis`] of a monotonic clock of the caller's (never the wall clock): a lease is
//! measured from when its renewal was sent, on the clock of the process that sent it.

pub mod background;
pub mod control;
pub mod keeper;
pub mod lease;
pub mod model;
pub mod route;
pub mod schema;

pub use model::{Epoch, Home, Millis, Region};
