//! Who may call which `member.v1` method: the table below, checked for every call by the
//! shared gRPC access checks ([`loyalty_identity::grpc_access`]), with the same permissions
//! as the REST routes. Writes that did not come through the gateway are audited there; an
//! unmasked read is audited always ([`GrpcAccess::record`] with [`READ_UNMASKED`]).

use loyalty_identity::checks::CallerChecks;
use loyalty_identity::grpc_access::GrpcAccess;
pub use loyalty_identity::grpc_access::{Admitted, Authenticated};
use loyalty_identity::permissions::{self as p, Permission};
use std::sync::Arc;

/// The full service name, which prefixes the actions of audited writes.
const SERVICE: &str = "member.v1.MemberService";

/// The audit action of an unmasked read, the same as the REST route's.
pub const READ_UNMASKED: &str = "member.read_unmasked";

/// Every method of `member.v1.MemberService` and the permission it needs.
pub const RPCS: &[(&str, Permission)] = &[
    ("RegisterMember", p::MEMBER_WRITE),
    ("GetProfile", p::MEMBER_READ),
    ("GetProfileUnmasked", p::PII_READ),
    ("UpdateProfile", p::MEMBER_WRITE),
    ("FindMember", p::MEMBER_READ),
    ("TagMember", p::MEMBER_WRITE),
    ("RecordOrder", p::ORDERS_WRITE),
    ("ListOrders", p::MEMBER_READ),
    ("GetActivity", p::MEMBER_READ),
    ("EraseMember", p::MEMBER_WRITE),
    ("GetErasureStatus", p::MEMBER_READ),
    ("ListSegmentMembers", p::MEMBER_READ),
    ("MergeMembers", p::MEMBER_WRITE),
    ("GetMerge", p::MEMBER_READ),
    ("ReverseMerge", p::MEMBER_WRITE),
];

/// The access checks of the member service's gRPC API: the shared checks with this table.
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
            .find(|(_, s)| s.name() == "MemberService")
            .unwrap();
        assert_eq!(format!("{package}.{}", service.name()), SERVICE);
        let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        let table: Vec<&str> = RPCS.iter().map(|(m, _)| *m).collect();
        assert_eq!(methods, table);
    }

    #[test]
    fn personal_data_in_the_clear_needs_the_unmask_permission() {
        let needs = |method: &str| {
            RPCS.iter()
                .find(|(m, _)| *m == method)
                .map(|(_, perm)| *perm)
        };
        assert_eq!(needs("GetProfileUnmasked"), Some(p::PII_READ));
        let others = RPCS.iter().filter(|(_, perm)| *perm == p::PII_READ).count();
        assert_eq!(
            others, 1,
            "only the unmasked read returns personal data in the clear"
        );
    }
}
