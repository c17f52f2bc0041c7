//! Who may call which `member.v1` method: the table below, checked for every call by the
//! shared gRPC access checks ([`loyalty_identity::grpc_access`]), with the same permissions
//! as the REST routes. Writes that did not come through the gateway are audited there; an
//! unmasked read is audited always ([`Access::record_unmasked`]).

use loyalty_identity::audit::Outcome;
use loyalty_identity::checks::CallerChecks;
use loyalty_identity::grpc_access::GrpcAccess;
pub use loyalty_identity::grpc_access::{Admitted, Authenticated};
use loyalty_identity::permissions::{self as p, Permission};
use std::sync::Arc;
use tonic::{Request, Status};

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

/// The access checks of the member service's gRPC API.
#[derive(Clone)]
pub struct Access(GrpcAccess);

impl Access {
    pub fn new(identity: Arc<dyn CallerChecks>) -> Self {
        Self(GrpcAccess::new(identity, SERVICE, RPCS))
    }

    /// Authenticates and authorizes a call of `method` about `tenant`.
    pub async fn admit<T>(
        &self,
        req: &Request<T>,
        method: &str,
        tenant: &str,
    ) -> Result<Admitted, Status> {
        self.0.admit(req, method, tenant).await
    }

    /// Records a write that did not come through the gateway, with its outcome; the call
    /// answers only once the record is stored.
    pub async fn finish<R>(
        &self,
        admitted: Admitted,
        target: &str,
        result: Result<R, Status>,
    ) -> Result<R, Status> {
        self.0.finish(admitted, target, result).await
    }

    /// Records an unmasked read of `target`, whoever passed the call on: it is stored before
    /// the data is returned, so no unmasked read goes unaudited.
    pub async fn record_unmasked(
        &self,
        admitted: &Admitted,
        target: &str,
        outcome: Outcome,
    ) -> Result<(), Status> {
        self.0
            .record(admitted, READ_UNMASKED, target, outcome)
            .await
    }
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
