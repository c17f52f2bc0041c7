//! Who may call which `member.v1` method from another process: the table below, checked for
//! every call by the guard in front of the gRPC service ([`loyalty_identity::grpc_guard`]),
//! with the same permissions as the REST routes. Writes are recorded in the audit log there,
//! and so is an unmasked read, as [`READ_UNMASKED`], before the data leaves.

use loyalty_identity::checks::CallerChecks;
use loyalty_identity::grpc_guard::{GuardLayer, Rpc};
use loyalty_identity::permissions as p;
use loyalty_identity::{audited_rpc, rpc};
use loyalty_proto::member::v1 as pb;
use std::sync::Arc;

/// The full service name, which prefixes the actions of audited writes.
const SERVICE: &str = "member.v1.MemberService";

/// The audit action of an unmasked read, the same as the REST route's.
pub const READ_UNMASKED: &str = "member.read_unmasked";

/// The tenant a member reference names ("" if none: the guard refuses it), and the audit
/// target.
fn member(member: &Option<pb::MemberRef>) -> (String, String) {
    member.as_ref().map_or_else(Default::default, |m| {
        let target = format!("member:{}/{}", m.tenant_id, m.member_id);
        (m.tenant_id.clone(), target)
    })
}

fn tenant(tenant: String) -> (String, String) {
    (tenant, String::new())
}

/// A write to the tenant's programme: the tenant, and the audit target `what:tenant`.
fn programme(tenant: String, what: &str) -> (String, String) {
    let target = format!("{what}:{tenant}");
    (tenant, target)
}

fn segment(r: pb::SegmentRef) -> (String, String) {
    let target = format!("segment:{}/{}", r.tenant_id, r.code);
    (r.tenant_id, target)
}

/// Every method of `member.v1.MemberService`, the permission it needs and its scope.
pub const RPCS: &[Rpc] = &[
    rpc!(
        "RegisterMember",
        p::MEMBER_WRITE,
        pb::RegisterMemberRequest,
        |r| member(&r.member)
    ),
    rpc!("GetProfile", p::MEMBER_READ, pb::MemberRef, |r| member(
        &Some(r)
    )),
    audited_rpc!(
        "member.read_unmasked",
        "GetProfileUnmasked",
        p::PII_READ,
        pb::MemberRef,
        |r| member(&Some(r))
    ),
    rpc!(
        "UpdateProfile",
        p::MEMBER_WRITE,
        pb::UpdateProfileRequest,
        |r| member(&r.member)
    ),
    rpc!("FindMember", p::MEMBER_READ, pb::FindMemberRequest, |r| {
        tenant(r.tenant_id)
    }),
    rpc!("TagMember", p::MEMBER_WRITE, pb::TagMemberRequest, |r| {
        member(&r.member)
    }),
    rpc!(
        "RecordOrder",
        p::ORDERS_WRITE,
        pb::RecordOrderRequest,
        |r| member(&r.member)
    ),
    rpc!("ListOrders", p::MEMBER_READ, pb::ListOrdersRequest, |r| {
        member(&r.member)
    }),
    rpc!("GetActivity", p::MEMBER_READ, pb::MemberRef, |r| member(
        &Some(r)
    )),
    rpc!(
        "GetFingerprints",
        p::MEMBER_READ,
        pb::MemberRef,
        |r| member(&Some(r))
    ),
    rpc!("EraseMember", p::MEMBER_WRITE, pb::MemberRef, |r| member(
        &Some(r)
    )),
    rpc!("GetErasureStatus", p::MEMBER_READ, pb::MemberRef, |r| {
        member(&Some(r))
    }),
    rpc!(
        "ListSegmentMembers",
        p::MEMBER_READ,
        pb::ListSegmentMembersRequest,
        |r| { tenant(r.tenant_id) }
    ),
    // Masked profiles, as GetProfile answers.
    rpc!("ListMembers", p::MEMBER_READ, pb::ListMembersRequest, |r| {
        tenant(r.tenant_id)
    }),
    // Ids of a segment-like list (no personal data), read as segments are.
    rpc!(
        "ListMembersBornOn",
        p::MEMBER_READ,
        pb::ListMembersBornOnRequest,
        |r| tenant(r.tenant_id)
    ),
    rpc!(
        "MergeMembers",
        p::MEMBER_WRITE,
        pb::MergeMembersRequest,
        |r| {
            let target = format!("member:{}/{}", r.tenant_id, r.survivor_member_id);
            (r.tenant_id, target)
        }
    ),
    rpc!("GetMerge", p::MEMBER_READ, pb::MergeRef, |r| tenant(
        r.tenant_id
    )),
    rpc!("ReverseMerge", p::MEMBER_WRITE, pb::MergeRef, |r| {
        let target = format!("merge:{}/{}", r.tenant_id, r.merge_id);
        (r.tenant_id, target)
    }),
    rpc!("GetTierPolicy", p::MEMBER_READ, pb::TenantRef, |r| tenant(
        r.tenant_id
    )),
    rpc!(
        "PutTierPolicy",
        p::PROGRAM_WRITE,
        pb::PutDocumentRequest,
        |r| programme(r.tenant_id, "tier-policy")
    ),
    rpc!("GetScoringPolicy", p::MEMBER_READ, pb::TenantRef, |r| {
        tenant(r.tenant_id)
    }),
    rpc!(
        "PutScoringPolicy",
        p::PROGRAM_WRITE,
        pb::PutDocumentRequest,
        |r| programme(r.tenant_id, "scoring-policy")
    ),
    rpc!("GetMemberTier", p::MEMBER_READ, pb::MemberRef, |r| member(
        &Some(r)
    )),
    rpc!("ReviewMemberTier", p::MEMBER_WRITE, pb::MemberRef, |r| {
        member(&Some(r))
    }),
    rpc!(
        "DecideTierChange",
        p::PROGRAM_WRITE,
        pb::DecideTierChangeRequest,
        |r| member(&r.member)
    ),
    rpc!(
        "ListTierApprovals",
        p::MEMBER_READ,
        pb::ListTierApprovalsRequest,
        |r| tenant(r.tenant_id)
    ),
    rpc!("ReviewTiers", p::PROGRAM_WRITE, pb::TenantRef, |r| {
        programme(r.tenant_id, "tiers")
    }),
    rpc!("ScoreMembers", p::PROGRAM_WRITE, pb::TenantRef, |r| {
        programme(r.tenant_id, "scores")
    }),
    rpc!("RotateTenantKey", p::POLICY_WRITE, pb::TenantRef, |r| {
        programme(r.tenant_id, "member-key")
    }),
    // A run over every member, as tier reviews and scoring are.
    rpc!(
        "RebuildBirthdayIndex",
        p::PROGRAM_WRITE,
        pb::TenantRef,
        |r| { programme(r.tenant_id, "birthday-index") }
    ),
    rpc!("ListSegments", p::MEMBER_READ, pb::TenantRef, |r| tenant(
        r.tenant_id
    )),
    rpc!("GetSegment", p::MEMBER_READ, pb::SegmentRef, |r| tenant(
        r.tenant_id
    )),
    rpc!("PutSegment", p::PROGRAM_WRITE, pb::PutSegmentRequest, |r| {
        let target = format!("segment:{}/{}", r.tenant_id, r.code);
        (r.tenant_id, target)
    }),
    rpc!("DeleteSegment", p::PROGRAM_WRITE, pb::SegmentRef, |r| {
        segment(r)
    }),
    rpc!("RefreshSegment", p::PROGRAM_WRITE, pb::SegmentRef, |r| {
        segment(r)
    }),
    // A count, read as segments are.
    rpc!(
        "PreviewSegment",
        p::MEMBER_READ,
        pb::PreviewSegmentRequest,
        |r| tenant(r.tenant_id)
    ),
    rpc!("TagMembers", p::MEMBER_WRITE, pb::TagMembersRequest, |r| {
        programme(r.tenant_id, "member-tags")
    }),
];

/// The guard of the member service's gRPC service, asking `identity` about callers.
pub fn guard(identity: Arc<dyn CallerChecks>) -> GuardLayer {
    GuardLayer::new(identity, SERVICE, RPCS)
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
        let table: Vec<&str> = RPCS.iter().map(|rpc| rpc.method).collect();
        assert_eq!(methods, table);
    }

    #[test]
    fn personal_data_in_the_clear_needs_the_unmask_permission() {
        let needs = |method: &str| {
            RPCS.iter()
                .find(|rpc| rpc.method == method)
                .map(|rpc| rpc.permission)
        };
        assert_eq!(needs("GetProfileUnmasked"), Some(p::PII_READ));
        let others = RPCS
            .iter()
            .filter(|rpc| rpc.permission == p::PII_READ)
            .count();
        assert_eq!(
            others, 1,
            "only the unmasked read returns personal data in the clear"
        );
    }
}
