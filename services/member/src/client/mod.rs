//! How other services call the member service: one trait, [`MemberClient`], in the
//! `member.v1` messages (its published contract), with an implementation in this process
//! ([`InProcessMembers`]: no encoding, no socket, no second access check) and one over gRPC
//! ([`GrpcMemberClient`]). A caller cannot tell which it has.
//!
//! Access is checked once, at the edge a request came in by: the REST gateway for its routes,
//! the member service's gRPC port for callers in other processes ([`crate::grpc_access`]).

mod grpc;
mod in_process;

pub use grpc::GrpcMemberClient;
pub use in_process::InProcessMembers;

use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_proto::member::v1 as pb;

/// The member service's operations.
#[async_trait]
pub trait MemberClient: Send + Sync + 'static {
    async fn register_member(&self, r: pb::RegisterMemberRequest) -> ServiceResult<pb::Profile>;
    async fn get_profile(&self, r: pb::MemberRef) -> ServiceResult<pb::Profile>;
    /// Personal data in the clear: the edge that let the caller in records the read.
    async fn get_profile_unmasked(&self, r: pb::MemberRef) -> ServiceResult<pb::Profile>;
    async fn update_profile(&self, r: pb::UpdateProfileRequest) -> ServiceResult<pb::Profile>;
    async fn find_member(&self, r: pb::FindMemberRequest) -> ServiceResult<pb::FoundMember>;
    async fn tag_member(&self, r: pb::TagMemberRequest) -> ServiceResult<pb::Profile>;
    async fn record_order(&self, r: pb::RecordOrderRequest) -> ServiceResult<pb::RecordedOrder>;
    async fn list_orders(&self, r: pb::ListOrdersRequest) -> ServiceResult<pb::OrdersPage>;
    async fn get_activity(&self, r: pb::MemberRef) -> ServiceResult<pb::Activity>;
    async fn get_fingerprints(&self, r: pb::MemberRef) -> ServiceResult<pb::Fingerprints>;
    async fn erase_member(&self, r: pb::MemberRef) -> ServiceResult<pb::ErasureStatus>;
    async fn get_erasure_status(&self, r: pb::MemberRef) -> ServiceResult<pb::ErasureStatus>;
    async fn list_members(&self, r: pb::ListMembersRequest) -> ServiceResult<pb::MemberList>;
    async fn preview_segment(
        &self,
        r: pb::PreviewSegmentRequest,
    ) -> ServiceResult<pb::SegmentPreview>;
    async fn list_segment_members(
        &self,
        r: pb::ListSegmentMembersRequest,
    ) -> ServiceResult<pb::SegmentMembersPage>;
    /// Ids of the members born on a month and day: nothing personal leaves.
    async fn list_members_born_on(
        &self,
        r: pb::ListMembersBornOnRequest,
    ) -> ServiceResult<pb::MembersPage>;
    async fn merge_members(&self, r: pb::MergeMembersRequest) -> ServiceResult<pb::Merge>;
    async fn get_merge(&self, r: pb::MergeRef) -> ServiceResult<pb::Merge>;
    async fn reverse_merge(&self, r: pb::MergeRef) -> ServiceResult<pb::Merge>;

    // The programme's rules.
    async fn get_tier_policy(&self, r: pb::TenantRef) -> ServiceResult<pb::Document>;
    async fn put_tier_policy(&self, r: pb::PutDocumentRequest) -> ServiceResult<pb::Document>;
    async fn get_scoring_policy(&self, r: pb::TenantRef) -> ServiceResult<pb::Document>;
    async fn put_scoring_policy(&self, r: pb::PutDocumentRequest) -> ServiceResult<pb::Document>;
    async fn get_member_tier(&self, r: pb::MemberRef) -> ServiceResult<pb::MemberTier>;
    async fn review_member_tier(&self, r: pb::MemberRef) -> ServiceResult<pb::Document>;
    async fn decide_tier_change(
        &self,
        r: pb::DecideTierChangeRequest,
    ) -> ServiceResult<pb::Document>;
    async fn list_tier_approvals(
        &self,
        r: pb::ListTierApprovalsRequest,
    ) -> ServiceResult<pb::TierApprovals>;
    async fn review_tiers(&self, r: pb::TenantRef) -> ServiceResult<pb::Run>;
    async fn score_members(&self, r: pb::TenantRef) -> ServiceResult<pb::Run>;
    async fn rotate_tenant_key(&self, r: pb::TenantRef) -> ServiceResult<pb::KeyRotation>;
    async fn rebuild_birthday_index(&self, r: pb::TenantRef) -> ServiceResult<pb::Run>;

    // Segments and tags in bulk.
    async fn list_segments(&self, r: pb::TenantRef) -> ServiceResult<pb::Segments>;
    async fn get_segment(&self, r: pb::SegmentRef) -> ServiceResult<pb::Segment>;
    async fn put_segment(&self, r: pb::PutSegmentRequest) -> ServiceResult<pb::Segment>;
    async fn delete_segment(&self, r: pb::SegmentRef) -> ServiceResult<pb::SegmentDeleted>;
    async fn refresh_segment(&self, r: pb::SegmentRef) -> ServiceResult<pb::SegmentRefresh>;
    async fn tag_members(&self, r: pb::TagMembersRequest) -> ServiceResult<pb::MembersTagged>;
}
