//! The `member.v1` gRPC port: each method hands its request to the member service's
//! in-process client, which parses and serves it; errors keep their stable codes
//! (`x-error-code`). Who may call what is checked in front of the service, once per call
//! ([`crate::grpc_access`]): it answers with personal data, so it never runs unguarded.

pub mod convert;

use crate::client::{InProcessMembers, MemberClient};
use crate::service::Members;
use loyalty_proto::member::v1 as pb;
use loyalty_proto::member::v1::member_service_server::{MemberService, MemberServiceServer};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The gRPC face of the member service.
#[derive(Clone)]
pub struct MemberGrpc {
    members: InProcessMembers,
}

impl MemberGrpc {
    pub fn new(members: Arc<Members>) -> Self {
        Self {
            members: InProcessMembers::new(members),
        }
    }

    /// The tonic service, ready to mount behind [`crate::grpc_access::guard`].
    pub fn into_server(self) -> MemberServiceServer<Self> {
        MemberServiceServer::new(self)
    }
}

/// Serves each method by the in-process client.
macro_rules! serve {
    ($($method:ident($request:ty) -> $reply:ty;)*) => {
        #[tonic::async_trait]
        impl MemberService for MemberGrpc {
            $(
                async fn $method(
                    &self,
                    request: Request<$request>,
                ) -> Result<Response<$reply>, Status> {
                    let reply = self.members.$method(request.into_inner()).await?;
                    Ok(Response::new(reply))
                }
            )*
        }
    };
}

serve! {
    register_member(pb::RegisterMemberRequest) -> pb::Profile;
    get_profile(pb::MemberRef) -> pb::Profile;
    get_profile_unmasked(pb::MemberRef) -> pb::Profile;
    update_profile(pb::UpdateProfileRequest) -> pb::Profile;
    find_member(pb::FindMemberRequest) -> pb::FoundMember;
    tag_member(pb::TagMemberRequest) -> pb::Profile;
    record_order(pb::RecordOrderRequest) -> pb::RecordedOrder;
    list_orders(pb::ListOrdersRequest) -> pb::OrdersPage;
    get_activity(pb::MemberRef) -> pb::Activity;
    get_fingerprints(pb::MemberRef) -> pb::Fingerprints;
    erase_member(pb::MemberRef) -> pb::ErasureStatus;
    get_erasure_status(pb::MemberRef) -> pb::ErasureStatus;
    list_members(pb::ListMembersRequest) -> pb::MemberList;
    preview_segment(pb::PreviewSegmentRequest) -> pb::SegmentPreview;
    list_segment_members(pb::ListSegmentMembersRequest) -> pb::SegmentMembersPage;
    list_members_born_on(pb::ListMembersBornOnRequest) -> pb::MembersPage;
    merge_members(pb::MergeMembersRequest) -> pb::Merge;
    get_merge(pb::MergeRef) -> pb::Merge;
    reverse_merge(pb::MergeRef) -> pb::Merge;
    get_tier_policy(pb::TenantRef) -> pb::Document;
    put_tier_policy(pb::PutDocumentRequest) -> pb::Document;
    get_scoring_policy(pb::TenantRef) -> pb::Document;
    put_scoring_policy(pb::PutDocumentRequest) -> pb::Document;
    get_member_tier(pb::MemberRef) -> pb::MemberTier;
    review_member_tier(pb::MemberRef) -> pb::Document;
    decide_tier_change(pb::DecideTierChangeRequest) -> pb::Document;
    list_tier_approvals(pb::ListTierApprovalsRequest) -> pb::TierApprovals;
    review_tiers(pb::TenantRef) -> pb::Run;
    score_members(pb::TenantRef) -> pb::Run;
    rotate_tenant_key(pb::TenantRef) -> pb::KeyRotation;
    rebuild_birthday_index(pb::TenantRef) -> pb::Run;
    list_segments(pb::TenantRef) -> pb::Segments;
    get_segment(pb::SegmentRef) -> pb::Segment;
    put_segment(pb::PutSegmentRequest) -> pb::Segment;
    delete_segment(pb::SegmentRef) -> pb::SegmentDeleted;
    refresh_segment(pb::SegmentRef) -> pb::SegmentRefresh;
    tag_members(pb::TagMembersRequest) -> pb::MembersTagged;
}

#[cfg(test)]
mod tests;
