//! Foundations every service shares. Domain code depends on these types, never on a driver.

pub mod clock;
pub mod config;
pub mod error;
pub mod ids;
pub mod money;
pub mod personal;
pub mod schema;
pub mod store_metrics;
pub mod write_scope;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::{ErrorCode, ServiceError};
