//! REST routes under `/v1`: the ledger's, members, administration, and logging in.

pub mod admin;
pub mod auth;
pub mod ledger;
pub mod members;
