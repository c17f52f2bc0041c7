//! Load generator for the ledger benchmark (`loadgen`).
//!
//! It drives `ledger.v1` over gRPC in a closed loop (a fixed number of clients, each sending
//! its next request as soon as the last one returns) and in an open loop (a fixed-rate
//! schedule, latency measured from each request's intended start so a slow server cannot hide
//! its queueing), and runs the same loop against a no-op echo service as a baseline for what the
//! gRPC stack alone costs on this machine.

pub mod bench;
pub mod coupons;
pub mod driver;
pub mod echo;
pub mod events;
pub mod mall;
pub mod rest;
pub mod setup;
pub mod stats;
pub mod target;
pub mod workload;

/// Generated `bench.v1` echo types and stubs.
pub mod pb {
    tonic::include_proto!("bench.v1");
}
