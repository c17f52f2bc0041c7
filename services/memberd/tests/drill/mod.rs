//! The two-region drill's parts: the global load balancer, the NATS supercluster and a
//! partner in each region, the clients' load, and the checks of the wallets afterwards.

pub mod balancer;
pub mod checks;
pub mod load;
pub mod partners;
pub mod supercluster;
