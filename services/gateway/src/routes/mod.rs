//! REST routes under `/v1`.

pub mod ledger;
