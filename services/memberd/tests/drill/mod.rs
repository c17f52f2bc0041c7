//! The two-region drill's parts: the global load balancer, the clients' load, and the checks
//! of the wallets afterwards.

pub mod balancer;
pub mod checks;
pub mod load;
