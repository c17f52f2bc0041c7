//! All end-to-end tests in one binary, each on its own memberd (port 0, fresh data directory).

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

mod admin_directory;
mod admin_idempotency;
mod authz;
mod campaigns;
mod coupons;
mod cql;
mod flash_sales;
mod grpc;
mod hardening;
mod lucky_draws;
mod mall;
mod member_grpc;
mod member_program;
mod members;
mod redis_limits;
mod remote_admin;
mod remote_identity;
mod remote_ledger;
mod remote_member;
mod rest_errors;
mod shutdown;
mod walkthrough;
