//! Identity and access for the platform: who a caller is (staff passwords with TOTP, signed
//! access tokens, refresh tokens, API keys), what they may do (RBAC with casbin, scoped by
//! tenant and store), and a tamper-evident record of what they did (the audit log).

pub mod audit;
pub mod audit_log;
pub mod changes;
pub mod checks;
pub mod client;
pub mod credential;
pub mod grpc;
pub mod grpc_guard;
pub mod model;
pub mod opaque;
pub mod password;
pub mod permissions;
pub mod policy;
pub mod rbac;
pub mod schema;
pub mod service;
pub mod store;
pub mod tokens;
pub mod totp;
