//! Who may call which `ledger.v1` method: the table below, checked for every call by the
//! shared gRPC access checks ([`loyalty_identity::grpc_access`]): in-process callers come
//! with the caller the gateway authenticated, network callers with their credential in the
//! metadata; the caller must belong to the request's tenant and hold the permission; writes
//! that did not come through the gateway are audited here.

use loyalty_identity::checks::CallerChecks;
use loyalty_identity::grpc_access::GrpcAccess;
pub use loyalty_identity::grpc_access::{Admitted, Authenticated};
use loyalty_identity::permissions::{self as p, Permission};
use std::sync::Arc;

/// The full service name, which prefixes the actions of audited writes.
const SERVICE: &str = "ledger.v1.LedgerService";

/// Every method of `ledger.v1.LedgerService` and the permission it needs.
pub const RPCS: &[(&str, Permission)] = &[
    ("OpenWallet", p::WALLET_WRITE),
    ("Earn", p::WALLET_WRITE),
    ("Redeem", p::WALLET_WRITE),
    ("CaptureHold", p::WALLET_WRITE),
    ("VoidHold", p::WALLET_WRITE),
    ("Reverse", p::WALLET_WRITE),
    ("Adjust", p::ADJUST),
    ("Transfer", p::WALLET_WRITE),
    ("TopUp", p::WALLET_WRITE),
    ("Spend", p::WALLET_WRITE),
    ("Refund", p::WALLET_WRITE),
    ("GetBalance", p::WALLET_READ),
    ("ListHistory", p::WALLET_READ),
    ("ListExpiring", p::WALLET_READ),
    ("PutRules", p::RULES_WRITE),
    ("GetRules", p::RULES_READ),
];

/// The access checks of the ledger's gRPC API: the shared checks with this table.
pub type Access = GrpcAccess;

pub fn access(identity: Arc<dyn CallerChecks>) -> Access {
    GrpcAccess::new(identity, SERVICE, RPCS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn every_method_of_the_service_is_in_the_table() {
        let set =
            prost_types::FileDescriptorSet::decode(loyalty_proto::FILE_DESCRIPTOR_SET).unwrap();
        let (package, service) = set
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
            .find(|(_, s)| s.name() == "LedgerService")
            .unwrap();
        assert_eq!(format!("{package}.{}", service.name()), SERVICE);
        let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        let table: Vec<&str> = RPCS.iter().map(|(m, _)| *m).collect();
        assert_eq!(methods, table);
    }
}
