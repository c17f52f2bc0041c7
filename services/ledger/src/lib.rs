//! The ledger: points and stored value per member wallet.
//!
//! Domain logic ([`wallet`], [`rules`], [`service`], [`transfer`]) depends only on the ports in
//! [`store`]; [`store::embedded`] is the single-machine adapter, [`grpc`] the `ledger.v1` API and
//! [`client`] how other services call it.

mod carry;
pub mod client;
pub mod command;
pub mod events;
pub mod grpc;
pub mod grpc_access;
pub mod model;
mod regions;
pub mod rules;
pub mod scheduler;
pub mod schema;
pub mod service;
pub mod store;
pub mod transfer;
pub mod wallet;

pub use service::{Ledger, LedgerPorts};
