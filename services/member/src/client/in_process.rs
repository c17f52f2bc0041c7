//! The member service in this process: each request is parsed and checked as the gRPC port
//! would ([`crate::grpc::convert`]), then served by [`Members`] directly.

use super::MemberClient;
use crate::grpc::convert;
use crate::profile::IndexKind;
use crate::service::{Members, View};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_proto::member::v1 as pb;
use std::sync::Arc;

const DEFAULT_ORDERS_PAGE: u32 = 50;
const MAX_ORDERS_PAGE: u32 = 500;
const DEFAULT_SEGMENT_PAGE: u32 = 100;
const MAX_SEGMENT_PAGE: u32 = 1_000;

/// The member service of this process, as a client.
#[derive(Clone)]
pub struct InProcessMembers {
    members: Arc<Members>,
}

impl InProcessMembers {
    pub fn new(members: Arc<Members>) -> Self {
        Self { members }
    }
}

fn ids(member: Option<pb::MemberRef>) -> ServiceResult<(TenantId, MemberId)> {
    let m = member.ok_or_else(|| ServiceError::invalid("member is required"))?;
    Ok((TenantId::parse(m.tenant_id)?, MemberId::parse(m.member_id)?))
}

/// A page size: `default` for 0, refused above `max` (rather than quietly cut).
fn limit(value: u32, default: u32, max: u32) -> ServiceResult<usize> {
    match value {
        0 => Ok(default as usize),
        l if l > max => Err(ServiceError::invalid(format!(
            "limit must be at most {max}"
        ))),
        l => Ok(l as usize),
    }
}

/// None for an empty cursor.
fn cursor(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

#[async_trait]
impl MemberClient for InProcessMembers {
    async fn register_member(&self, r: pb::RegisterMemberRequest) -> ServiceResult<pb::Profile> {
        let (tenant, member) = ids(r.member.clone())?;
        self.members
            .register(&tenant, &member, convert::profile_input(r))
            .await?;
        // The reply is masked, like every profile but the unmasked read's.
        let profile = self.members.profile(&tenant, &member, View::Masked).await?;
        Ok(convert::profile(profile))
    }

    async fn get_profile(&self, r: pb::MemberRef) -> ServiceResult<pb::Profile> {
        let (tenant, member) = ids(Some(r))?;
        let profile = self.members.profile(&tenant, &member, View::Masked).await?;
        Ok(convert::profile(profile))
    }

    async fn get_profile_unmasked(&self, r: pb::MemberRef) -> ServiceResult<pb::Profile> {
        let (tenant, member) = ids(Some(r))?;
        let profile = self
            .members
            .profile(&tenant, &member, View::Unmasked)
            .await?;
        Ok(convert::profile(profile))
    }

    async fn update_profile(&self, r: pb::UpdateProfileRequest) -> ServiceResult<pb::Profile> {
        let (tenant, member) = ids(r.member.clone())?;
        let patch = convert::profile_patch(r)?;
        let profile = self.members.update(&tenant, &member, patch).await?;
        Ok(convert::profile(profile))
    }

    async fn find_member(&self, r: pb::FindMemberRequest) -> ServiceResult<pb::FoundMember> {
        use pb::find_member_request::By;
        let tenant = TenantId::parse(r.tenant_id)?;
        let (kind, value) = match r.by {
            Some(By::Phone(v)) => (IndexKind::Phone, v),
            Some(By::Email(v)) => (IndexKind::Email, v),
            Some(By::IdNumber(v)) => (IndexKind::IdNumber, v),
            None => return Err(ServiceError::invalid("give phone, email or id_number")),
        };
        let member_id = self
            .members
            .find(&tenant, kind, &value)
            .await?
            .ok_or_else(|| {
                ServiceError::new(
                    ErrorCode::MemberNotFound,
                    format!("no member of {tenant} has this {}", kind.label()),
                )
            })?;
        Ok(pb::FoundMember { member_id })
    }

    async fn tag_member(&self, r: pb::TagMemberRequest) -> ServiceResult<pb::Profile> {
        let (tenant, member) = ids(r.member)?;
        let profile = self
            .members
            .tag(&tenant, &member, &r.add, &r.remove)
            .await?;
        Ok(convert::profile(profile))
    }

    async fn record_order(&self, r: pb::RecordOrderRequest) -> ServiceResult<pb::RecordedOrder> {
        let (tenant, member) = ids(r.member.clone())?;
        let recorded = self
            .members
            .record_order(&tenant, &member, convert::order_input(r))
            .await?;
        Ok(pb::RecordedOrder {
            order: Some(convert::order(recorded.order)),
            replayed: recorded.replayed,
        })
    }

    async fn list_orders(&self, r: pb::ListOrdersRequest) -> ServiceResult<pb::OrdersPage> {
        let (tenant, member) = ids(r.member)?;
        let limit = limit(r.limit, DEFAULT_ORDERS_PAGE, MAX_ORDERS_PAGE)?;
        let (orders, next) = self
            .members
            .orders(&tenant, &member, cursor(&r.cursor), limit)
            .await?;
        Ok(pb::OrdersPage {
            orders: orders.into_iter().map(convert::order).collect(),
            next_cursor: next.unwrap_or_default(),
        })
    }

    async fn get_activity(&self, r: pb::MemberRef) -> ServiceResult<pb::Activity> {
        let (tenant, member) = ids(Some(r))?;
        let facts = self.members.facts(&tenant, &member).await?;
        Ok(convert::activity(facts, self.members.now()))
    }

    async fn erase_member(&self, r: pb::MemberRef) -> ServiceResult<pb::ErasureStatus> {
        let (tenant, member) = ids(Some(r))?;
        let status = self.members.erase(&tenant, &member).await?;
        Ok(convert::erasure(status))
    }

    async fn get_erasure_status(&self, r: pb::MemberRef) -> ServiceResult<pb::ErasureStatus> {
        let (tenant, member) = ids(Some(r))?;
        let status = self.members.erasure_status(&tenant, &member).await?;
        Ok(convert::erasure(status))
    }

    async fn list_segment_members(
        &self,
        r: pb::ListSegmentMembersRequest,
    ) -> ServiceResult<pb::SegmentMembersPage> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let limit = limit(r.limit, DEFAULT_SEGMENT_PAGE, MAX_SEGMENT_PAGE)?;
        let (member_ids, next) = self
            .members
            .segment_members(&tenant, &r.segment_code, cursor(&r.cursor), limit)
            .await?;
        Ok(pb::SegmentMembersPage {
            member_ids,
            next_cursor: next.unwrap_or_default(),
        })
    }

    async fn merge_members(&self, r: pb::MergeMembersRequest) -> ServiceResult<pb::Merge> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let survivor = MemberId::parse(r.survivor_member_id)?;
        let duplicate = MemberId::parse(r.duplicate_member_id)?;
        let record = self.members.merge(&tenant, &survivor, &duplicate).await?;
        Ok(convert::merge(record))
    }

    async fn get_merge(&self, r: pb::MergeRef) -> ServiceResult<pb::Merge> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let record = self.members.merge_record(&tenant, &r.merge_id).await?;
        Ok(convert::merge(record))
    }

    async fn reverse_merge(&self, r: pb::MergeRef) -> ServiceResult<pb::Merge> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let record = self.members.reverse_merge(&tenant, &r.merge_id).await?;
        Ok(convert::merge(record))
    }
}
