//! The member service in another process, over its gRPC port. Reads, and writes that give
//! the same answer when repeated (a profile patch, tags, an order under its id, an erasure),
//! are retried when the service was unreachable or overloaded ([`retry_idempotent`]); a
//! registration, a merge, a tier decision, a run over every member (an index rebuild too),
//! a key rotation or a deletion is not, since its repeat would answer differently or do the
//! work again.

use super::MemberClient;
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_proto::member::v1 as pb;
use loyalty_proto::member::v1::member_service_client::MemberServiceClient;
use loyalty_proto::transport::{Transport, retry_idempotent};

/// A client of the member service's replicas behind `transport`.
#[derive(Clone)]
pub struct GrpcMemberClient {
    client: MemberServiceClient<Transport>,
}

impl GrpcMemberClient {
    pub fn new(transport: Transport) -> Self {
        Self {
            client: MemberServiceClient::new(transport),
        }
    }
}

/// Calls `method` with `request`: `retried` again if the service could not be reached,
/// `once` only once.
macro_rules! call {
    (retried, $self:ident, $method:ident, $request:ident) => {{
        let reply = retry_idempotent(|| {
            let mut client = $self.client.clone();
            let request = $request.clone();
            async move { client.$method(request).await }
        })
        .await?;
        Ok(reply.into_inner())
    }};
    (once, $self:ident, $method:ident, $request:ident) => {{
        let reply = $self.client.clone().$method($request).await?;
        Ok(reply.into_inner())
    }};
}

#[async_trait]
impl MemberClient for GrpcMemberClient {
    async fn register_member(&self, r: pb::RegisterMemberRequest) -> ServiceResult<pb::Profile> {
        call!(once, self, register_member, r)
    }
    async fn get_profile(&self, r: pb::MemberRef) -> ServiceResult<pb::Profile> {
        call!(retried, self, get_profile, r)
    }
    async fn get_profile_unmasked(&self, r: pb::MemberRef) -> ServiceResult<pb::Profile> {
        call!(retried, self, get_profile_unmasked, r)
    }
    async fn update_profile(&self, r: pb::UpdateProfileRequest) -> ServiceResult<pb::Profile> {
        call!(retried, self, update_profile, r)
    }
    async fn find_member(&self, r: pb::FindMemberRequest) -> ServiceResult<pb::FoundMember> {
        call!(retried, self, find_member, r)
    }
    async fn tag_member(&self, r: pb::TagMemberRequest) -> ServiceResult<pb::Profile> {
        call!(retried, self, tag_member, r)
    }
    async fn record_order(&self, r: pb::RecordOrderRequest) -> ServiceResult<pb::RecordedOrder> {
        call!(retried, self, record_order, r)
    }
    async fn list_orders(&self, r: pb::ListOrdersRequest) -> ServiceResult<pb::OrdersPage> {
        call!(retried, self, list_orders, r)
    }
    async fn get_activity(&self, r: pb::MemberRef) -> ServiceResult<pb::Activity> {
        call!(retried, self, get_activity, r)
    }

    async fn get_fingerprints(&self, r: pb::MemberRef) -> ServiceResult<pb::Fingerprints> {
        call!(retried, self, get_fingerprints, r)
    }
    async fn erase_member(&self, r: pb::MemberRef) -> ServiceResult<pb::ErasureStatus> {
        call!(retried, self, erase_member, r)
    }
    async fn get_erasure_status(&self, r: pb::MemberRef) -> ServiceResult<pb::ErasureStatus> {
        call!(retried, self, get_erasure_status, r)
    }
    async fn list_members(&self, r: pb::ListMembersRequest) -> ServiceResult<pb::MemberList> {
        call!(retried, self, list_members, r)
    }

    async fn preview_segment(
        &self,
        r: pb::PreviewSegmentRequest,
    ) -> ServiceResult<pb::SegmentPreview> {
        call!(retried, self, preview_segment, r)
    }

    async fn list_segment_members(
        &self,
        r: pb::ListSegmentMembersRequest,
    ) -> ServiceResult<pb::SegmentMembersPage> {
        call!(retried, self, list_segment_members, r)
    }
    async fn list_members_born_on(
        &self,
        r: pb::ListMembersBornOnRequest,
    ) -> ServiceResult<pb::MembersPage> {
        call!(retried, self, list_members_born_on, r)
    }
    async fn merge_members(&self, r: pb::MergeMembersRequest) -> ServiceResult<pb::Merge> {
        call!(once, self, merge_members, r)
    }
    async fn get_merge(&self, r: pb::MergeRef) -> ServiceResult<pb::Merge> {
        call!(retried, self, get_merge, r)
    }
    async fn reverse_merge(&self, r: pb::MergeRef) -> ServiceResult<pb::Merge> {
        call!(once, self, reverse_merge, r)
    }
    async fn get_tier_policy(&self, r: pb::TenantRef) -> ServiceResult<pb::Document> {
        call!(retried, self, get_tier_policy, r)
    }
    async fn put_tier_policy(&self, r: pb::PutDocumentRequest) -> ServiceResult<pb::Document> {
        call!(retried, self, put_tier_policy, r)
    }
    async fn get_scoring_policy(&self, r: pb::TenantRef) -> ServiceResult<pb::Document> {
        call!(retried, self, get_scoring_policy, r)
    }
    async fn put_scoring_policy(&self, r: pb::PutDocumentRequest) -> ServiceResult<pb::Document> {
        call!(retried, self, put_scoring_policy, r)
    }
    async fn get_member_tier(&self, r: pb::MemberRef) -> ServiceResult<pb::MemberTier> {
        call!(retried, self, get_member_tier, r)
    }
    async fn review_member_tier(&self, r: pb::MemberRef) -> ServiceResult<pb::Document> {
        call!(once, self, review_member_tier, r)
    }
    async fn decide_tier_change(
        &self,
        r: pb::DecideTierChangeRequest,
    ) -> ServiceResult<pb::Document> {
        call!(once, self, decide_tier_change, r)
    }
    async fn list_tier_approvals(
        &self,
        r: pb::ListTierApprovalsRequest,
    ) -> ServiceResult<pb::TierApprovals> {
        call!(retried, self, list_tier_approvals, r)
    }
    async fn review_tiers(&self, r: pb::TenantRef) -> ServiceResult<pb::Run> {
        call!(once, self, review_tiers, r)
    }
    async fn score_members(&self, r: pb::TenantRef) -> ServiceResult<pb::Run> {
        call!(once, self, score_members, r)
    }
    async fn rotate_tenant_key(&self, r: pb::TenantRef) -> ServiceResult<pb::KeyRotation> {
        call!(once, self, rotate_tenant_key, r)
    }
    async fn rebuild_birthday_index(&self, r: pb::TenantRef) -> ServiceResult<pb::Run> {
        call!(once, self, rebuild_birthday_index, r)
    }
    async fn list_segments(&self, r: pb::TenantRef) -> ServiceResult<pb::Segments> {
        call!(retried, self, list_segments, r)
    }
    async fn get_segment(&self, r: pb::SegmentRef) -> ServiceResult<pb::Segment> {
        call!(retried, self, get_segment, r)
    }
    async fn put_segment(&self, r: pb::PutSegmentRequest) -> ServiceResult<pb::Segment> {
        call!(retried, self, put_segment, r)
    }
    async fn delete_segment(&self, r: pb::SegmentRef) -> ServiceResult<pb::SegmentDeleted> {
        call!(once, self, delete_segment, r)
    }
    async fn refresh_segment(&self, r: pb::SegmentRef) -> ServiceResult<pb::SegmentRefresh> {
        call!(retried, self, refresh_segment, r)
    }
    async fn tag_members(&self, r: pb::TagMembersRequest) -> ServiceResult<pb::MembersTagged> {
        call!(retried, self, tag_members, r)
    }
}
