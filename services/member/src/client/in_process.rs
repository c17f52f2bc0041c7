//! The member service in this process: each request is parsed and checked as the gRPC port
//! would ([`crate::grpc::convert`]), then served by [`Members`] directly.

use super::MemberClient;
use crate::grpc::convert;
use crate::profile::IndexKind;
use crate::rfm::ScoringPolicy;
use crate::service::{MemberFilter, Members, View};
use crate::tier::TierPolicy;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_proto::member::v1 as pb;
use std::sync::Arc;

const DEFAULT_ORDERS_PAGE: u32 = 50;
const MAX_ORDERS_PAGE: u32 = 500;
const DEFAULT_SEGMENT_PAGE: u32 = 100;
/// A member list's page when none is asked for, and the most.
const DEFAULT_MEMBER_PAGE: u32 = 50;
const MAX_MEMBER_PAGE: u32 = 200;
const MAX_SEGMENT_PAGE: u32 = 1_000;
const DEFAULT_BIRTHDAY_PAGE: u32 = 100;
const MAX_BIRTHDAY_PAGE: u32 = 1_000;
const DEFAULT_APPROVALS_PAGE: u32 = 100;
const MAX_APPROVALS_PAGE: u32 = 500;
/// Members named in one bulk tagging; more go by a segment.
const MAX_TAGGED_AT_ONCE: usize = 10_000;

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

fn segment_ref(r: pb::SegmentRef) -> ServiceResult<(TenantId, String)> {
    Ok((TenantId::parse(r.tenant_id)?, r.code))
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

    async fn get_fingerprints(&self, r: pb::MemberRef) -> ServiceResult<pb::Fingerprints> {
        let (tenant, member) = ids(Some(r))?;
        Ok(pb::Fingerprints {
            fingerprints: self.members.fingerprints(&tenant, &member).await?,
        })
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

    async fn list_members(&self, r: pb::ListMembersRequest) -> ServiceResult<pb::MemberList> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let limit = limit(r.limit, DEFAULT_MEMBER_PAGE, MAX_MEMBER_PAGE)?;
        let given = |v: String| (!v.is_empty()).then_some(v);
        let filter = MemberFilter {
            tag: given(r.tag),
            tier: given(r.tier),
            store: given(r.store),
            segment: given(r.segment),
        };
        let page = self
            .members
            .list_members(&tenant, &filter, cursor(&r.cursor), limit)
            .await?;
        Ok(pb::MemberList {
            members: page.members.into_iter().map(convert::profile).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
            scanned: page.scanned as u32,
        })
    }

    async fn preview_segment(
        &self,
        r: pb::PreviewSegmentRequest,
    ) -> ServiceResult<pb::SegmentPreview> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let query: serde_json::Value = serde_json::from_str(&r.query_json)
            .map_err(|e| ServiceError::invalid(format!("query: not JSON: {e}")))?;
        let preview = self.members.preview_segment(&tenant, &query).await?;
        Ok(pb::SegmentPreview {
            count: preview.count,
            scanned: preview.scanned,
            complete: preview.complete,
        })
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

    async fn list_members_born_on(
        &self,
        r: pb::ListMembersBornOnRequest,
    ) -> ServiceResult<pb::MembersPage> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let limit = limit(r.limit, DEFAULT_BIRTHDAY_PAGE, MAX_BIRTHDAY_PAGE)?;
        let (member_ids, next) = self
            .members
            .members_born_on(&tenant, r.month, r.day, cursor(&r.after), limit)
            .await?;
        Ok(pb::MembersPage {
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

    async fn get_tier_policy(&self, r: pb::TenantRef) -> ServiceResult<pb::Document> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let policy = self.members.tier_policy(&tenant).await?.ok_or_else(|| {
            ServiceError::new(
                ErrorCode::TierPolicyNotFound,
                format!("tenant {tenant} has no tier policy; PUT one"),
            )
        })?;
        Ok(pb::Document {
            json: convert::json(&policy),
        })
    }

    async fn put_tier_policy(&self, r: pb::PutDocumentRequest) -> ServiceResult<pb::Document> {
        let policy: TierPolicy = convert::document(&r.json, "tier policy")?;
        let tenant = TenantId::parse(r.tenant_id)?;
        self.members.put_tier_policy(&tenant, &policy).await?;
        Ok(pb::Document {
            json: convert::json(&policy),
        })
    }

    async fn get_scoring_policy(&self, r: pb::TenantRef) -> ServiceResult<pb::Document> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let policy = self.members.scoring_policy(&tenant).await?;
        Ok(pb::Document {
            json: convert::json(&policy),
        })
    }

    async fn put_scoring_policy(&self, r: pb::PutDocumentRequest) -> ServiceResult<pb::Document> {
        let policy: ScoringPolicy = convert::document(&r.json, "scoring policy")?;
        let tenant = TenantId::parse(r.tenant_id)?;
        self.members.put_scoring_policy(&tenant, &policy).await?;
        Ok(pb::Document {
            json: convert::json(&policy),
        })
    }

    async fn get_member_tier(&self, r: pb::MemberRef) -> ServiceResult<pb::MemberTier> {
        let (tenant, member) = ids(Some(r))?;
        let facts = self.members.facts(&tenant, &member).await?;
        let policy = self.members.tier_policy(&tenant).await?;
        Ok(pb::MemberTier {
            earn_multiplier_bp: Members::earn_multiplier_bp(policy.as_ref(), &facts),
            state_json: facts
                .tier_state
                .as_ref()
                .map(convert::json)
                .unwrap_or_default(),
            member_id: facts.member_id,
            tier: facts.tier.unwrap_or_default(),
        })
    }

    async fn review_member_tier(&self, r: pb::MemberRef) -> ServiceResult<pb::Document> {
        let (tenant, member) = ids(Some(r))?;
        let decision = self.members.review_tier(&tenant, &member).await?;
        Ok(pb::Document {
            json: convert::json(&decision),
        })
    }

    async fn decide_tier_change(
        &self,
        r: pb::DecideTierChangeRequest,
    ) -> ServiceResult<pb::Document> {
        let (tenant, member) = ids(r.member)?;
        let decision = self
            .members
            .decide_tier_change(&tenant, &member, r.approve)
            .await?;
        Ok(pb::Document {
            json: convert::json(&decision),
        })
    }

    async fn list_tier_approvals(
        &self,
        r: pb::ListTierApprovalsRequest,
    ) -> ServiceResult<pb::TierApprovals> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let limit = limit(r.limit, DEFAULT_APPROVALS_PAGE, MAX_APPROVALS_PAGE)?;
        let pending = self
            .members
            .pending_tier_changes(&tenant, cursor(&r.after), limit)
            .await?;
        let pending = pending
            .into_iter()
            .map(|(member_id, change)| pb::PendingTierChange {
                member_id,
                change_json: convert::json(&change),
            })
            .collect();
        Ok(pb::TierApprovals { pending })
    }

    async fn review_tiers(&self, r: pb::TenantRef) -> ServiceResult<pb::Run> {
        let tenant = TenantId::parse(r.tenant_id)?;
        Ok(convert::tier_run(self.members.review_tiers(&tenant).await?))
    }

    async fn score_members(&self, r: pb::TenantRef) -> ServiceResult<pb::Run> {
        let tenant = TenantId::parse(r.tenant_id)?;
        Ok(convert::scoring_run(
            self.members.score_members(&tenant).await?,
        ))
    }

    async fn rotate_tenant_key(&self, r: pb::TenantRef) -> ServiceResult<pb::KeyRotation> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let rewrapped = self.members.rotate_tenant_key(&tenant).await?;
        Ok(pb::KeyRotation {
            rewrapped: rewrapped as u64,
        })
    }

    async fn rebuild_birthday_index(&self, r: pb::TenantRef) -> ServiceResult<pb::Run> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let run = self.members.rebuild_birthday_index(&tenant).await?;
        Ok(pb::Run {
            members: run.members,
            changed: run.changed,
        })
    }

    async fn list_segments(&self, r: pb::TenantRef) -> ServiceResult<pb::Segments> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let segments = self.members.segments(&tenant).await?;
        Ok(pb::Segments {
            segments: segments.into_iter().map(convert::segment).collect(),
        })
    }

    async fn get_segment(&self, r: pb::SegmentRef) -> ServiceResult<pb::Segment> {
        let (tenant, code) = segment_ref(r)?;
        Ok(convert::segment(
            self.members.segment(&tenant, &code).await?,
        ))
    }

    async fn put_segment(&self, r: pb::PutSegmentRequest) -> ServiceResult<pb::Segment> {
        let tenant = TenantId::parse(&r.tenant_id)?;
        let code = r.code.clone();
        let input = convert::segment_input(r)?;
        let segment = self.members.put_segment(&tenant, &code, input).await?;
        Ok(convert::segment(segment))
    }

    async fn delete_segment(&self, r: pb::SegmentRef) -> ServiceResult<pb::SegmentDeleted> {
        let (tenant, code) = segment_ref(r)?;
        self.members.delete_segment(&tenant, &code).await?;
        Ok(pb::SegmentDeleted { code })
    }

    async fn refresh_segment(&self, r: pb::SegmentRef) -> ServiceResult<pb::SegmentRefresh> {
        let (tenant, code) = segment_ref(r)?;
        let refresh = self.members.refresh_segment(&tenant, &code).await?;
        Ok(convert::refresh(refresh))
    }

    async fn tag_members(&self, r: pb::TagMembersRequest) -> ServiceResult<pb::MembersTagged> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let targets = match (r.segment_code, r.member_ids.is_empty()) {
            (Some(code), true) => self.members.all_segment_members(&tenant, &code).await?,
            (None, false) if r.member_ids.len() <= MAX_TAGGED_AT_ONCE => r
                .member_ids
                .iter()
                .map(MemberId::parse)
                .collect::<Result<_, _>>()?,
            (None, false) => {
                return Err(ServiceError::invalid(format!(
                    "at most {MAX_TAGGED_AT_ONCE} members at once; use a segment"
                )));
            }
            _ => return Err(ServiceError::invalid("give either members or segment")),
        };
        let outcome = self
            .members
            .tag_many(&tenant, &targets, &r.add, &r.remove)
            .await?;
        Ok(convert::tagged(outcome))
    }
}
