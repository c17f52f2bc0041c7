//! The `member.v1` gRPC API: checks the caller ([`crate::grpc_access`]), parses requests at
//! the edge, calls [`Members`], maps results; errors keep their stable codes (`x-error-code`).

mod convert;

use crate::grpc_access::{Access, Admitted, READ_UNMASKED};
use crate::profile::IndexKind;
use crate::service::{Members, View};
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_identity::audit::Outcome;
use loyalty_proto::member::v1 as pb;
use loyalty_proto::member::v1::member_service_server::{MemberService, MemberServiceServer};
use std::future::Future;
use std::sync::Arc;
use tonic::{Request, Response, Status};

const DEFAULT_ORDERS_PAGE: u32 = 50;
const MAX_ORDERS_PAGE: u32 = 500;
const DEFAULT_SEGMENT_PAGE: u32 = 100;
const MAX_SEGMENT_PAGE: u32 = 1_000;

type Reply<T> = Result<Response<T>, Status>;

/// The gRPC face of the member service. Unlike the ledger's, it always checks its callers:
/// it answers with personal data, so there is no process it may serve unguarded.
#[derive(Clone)]
pub struct MemberGrpc {
    members: Arc<Members>,
    access: Access,
}

/// The tenant a member reference names ("" if none: the check refuses it).
fn tenant_of(member: &Option<pb::MemberRef>) -> &str {
    member.as_ref().map_or("", |m| m.tenant_id.as_str())
}

/// The audit target of a member reference.
fn target_of(member: &Option<pb::MemberRef>) -> String {
    member.as_ref().map_or(String::new(), |m| {
        format!("member:{}/{}", m.tenant_id, m.member_id)
    })
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

impl MemberGrpc {
    pub fn new(members: Arc<Members>, access: Access) -> Self {
        Self { members, access }
    }

    /// The tonic service, ready to mount.
    pub fn into_server(self) -> MemberServiceServer<Self> {
        MemberServiceServer::new(self)
    }

    /// Carries out an admitted write, and has it audited if the gateway did not.
    async fn write<R>(
        &self,
        admitted: Admitted,
        target: &str,
        result: impl Future<Output = ServiceResult<R>>,
    ) -> Reply<R> {
        let result = result.await.map(Response::new).map_err(Status::from);
        self.access.finish(admitted, target, result).await
    }
}

#[tonic::async_trait]
impl MemberService for MemberGrpc {
    async fn register_member(&self, req: Request<pb::RegisterMemberRequest>) -> Reply<pb::Profile> {
        let r = req.get_ref();
        let (tenant, target) = (tenant_of(&r.member), target_of(&r.member));
        let admitted = self.access.admit(&req, "RegisterMember", tenant).await?;
        let r = req.into_inner();
        let result = async {
            let (tenant, member) = ids(r.member.clone())?;
            self.members
                .register(&tenant, &member, convert::profile_input(r))
                .await?;
            // The reply is masked, like every profile but the unmasked read's.
            let profile = self.members.profile(&tenant, &member, View::Masked).await?;
            Ok(convert::profile(profile))
        };
        self.write(admitted, &target, result).await
    }

    async fn get_profile(&self, req: Request<pb::MemberRef>) -> Reply<pb::Profile> {
        self.access
            .admit(&req, "GetProfile", &req.get_ref().tenant_id)
            .await?;
        let (tenant, member) = ids(Some(req.into_inner()))?;
        let profile = self.members.profile(&tenant, &member, View::Masked).await?;
        Ok(Response::new(convert::profile(profile)))
    }

    async fn get_profile_unmasked(&self, req: Request<pb::MemberRef>) -> Reply<pb::Profile> {
        let admitted = self
            .access
            .admit(&req, "GetProfileUnmasked", &req.get_ref().tenant_id)
            .await?;
        let r = req.into_inner();
        let target = format!("member:{}/{}", r.tenant_id, r.member_id);
        let result = async {
            let (tenant, member) = ids(Some(r))?;
            self.members.profile(&tenant, &member, View::Unmasked).await
        }
        .await;
        let outcome = match &result {
            Ok(_) => Outcome::Allowed,
            Err(e) => Outcome::Failed(e.code.as_str().into()),
        };
        // Recorded before the data leaves: no unaudited unmasked read, even in process.
        self.access
            .record(&admitted, READ_UNMASKED, &target, outcome)
            .await?;
        Ok(Response::new(convert::profile(result?)))
    }

    async fn update_profile(&self, req: Request<pb::UpdateProfileRequest>) -> Reply<pb::Profile> {
        let r = req.get_ref();
        let (tenant, target) = (tenant_of(&r.member), target_of(&r.member));
        let admitted = self.access.admit(&req, "UpdateProfile", tenant).await?;
        let r = req.into_inner();
        let result = async {
            let (tenant, member) = ids(r.member.clone())?;
            let patch = convert::profile_patch(r)?;
            let profile = self.members.update(&tenant, &member, patch).await?;
            Ok(convert::profile(profile))
        };
        self.write(admitted, &target, result).await
    }

    async fn find_member(&self, req: Request<pb::FindMemberRequest>) -> Reply<pb::FoundMember> {
        use pb::find_member_request::By;
        self.access
            .admit(&req, "FindMember", &req.get_ref().tenant_id)
            .await?;
        let r = req.into_inner();
        let tenant = TenantId::parse(r.tenant_id)?;
        let (kind, value) = match r.by {
            Some(By::Phone(v)) => (IndexKind::Phone, v),
            Some(By::Email(v)) => (IndexKind::Email, v),
            Some(By::IdNumber(v)) => (IndexKind::IdNumber, v),
            None => return Err(ServiceError::invalid("give phone, email or id_number").into()),
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
        Ok(Response::new(pb::FoundMember { member_id }))
    }

    async fn tag_member(&self, req: Request<pb::TagMemberRequest>) -> Reply<pb::Profile> {
        let r = req.get_ref();
        let (tenant, target) = (tenant_of(&r.member), target_of(&r.member));
        let admitted = self.access.admit(&req, "TagMember", tenant).await?;
        let r = req.into_inner();
        let result = async {
            let (tenant, member) = ids(r.member)?;
            let profile = self
                .members
                .tag(&tenant, &member, &r.add, &r.remove)
                .await?;
            Ok(convert::profile(profile))
        };
        self.write(admitted, &target, result).await
    }

    async fn record_order(&self, req: Request<pb::RecordOrderRequest>) -> Reply<pb::RecordedOrder> {
        let r = req.get_ref();
        let (tenant, target) = (tenant_of(&r.member), target_of(&r.member));
        let admitted = self.access.admit(&req, "RecordOrder", tenant).await?;
        let r = req.into_inner();
        let result = async {
            let (tenant, member) = ids(r.member.clone())?;
            let recorded = self
                .members
                .record_order(&tenant, &member, convert::order_input(r))
                .await?;
            Ok(pb::RecordedOrder {
                order: Some(convert::order(recorded.order)),
                replayed: recorded.replayed,
            })
        };
        self.write(admitted, &target, result).await
    }

    async fn list_orders(&self, req: Request<pb::ListOrdersRequest>) -> Reply<pb::OrdersPage> {
        self.access
            .admit(&req, "ListOrders", tenant_of(&req.get_ref().member))
            .await?;
        let r = req.into_inner();
        let (tenant, member) = ids(r.member)?;
        let limit = limit(r.limit, DEFAULT_ORDERS_PAGE, MAX_ORDERS_PAGE)?;
        let (orders, next) = self
            .members
            .orders(&tenant, &member, cursor(&r.cursor), limit)
            .await?;
        Ok(Response::new(pb::OrdersPage {
            orders: orders.into_iter().map(convert::order).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }

    async fn get_activity(&self, req: Request<pb::MemberRef>) -> Reply<pb::Activity> {
        self.access
            .admit(&req, "GetActivity", &req.get_ref().tenant_id)
            .await?;
        let (tenant, member) = ids(Some(req.into_inner()))?;
        let facts = self.members.facts(&tenant, &member).await?;
        Ok(Response::new(convert::activity(facts, self.members.now())))
    }

    async fn erase_member(&self, req: Request<pb::MemberRef>) -> Reply<pb::ErasureStatus> {
        let target = target_of(&Some(req.get_ref().clone()));
        let admitted = self
            .access
            .admit(&req, "EraseMember", &req.get_ref().tenant_id)
            .await?;
        let result = async {
            let (tenant, member) = ids(Some(req.into_inner()))?;
            let status = self.members.erase(&tenant, &member).await?;
            Ok(convert::erasure(status))
        };
        self.write(admitted, &target, result).await
    }

    async fn get_erasure_status(&self, req: Request<pb::MemberRef>) -> Reply<pb::ErasureStatus> {
        self.access
            .admit(&req, "GetErasureStatus", &req.get_ref().tenant_id)
            .await?;
        let (tenant, member) = ids(Some(req.into_inner()))?;
        let status = self.members.erasure_status(&tenant, &member).await?;
        Ok(Response::new(convert::erasure(status)))
    }

    async fn list_segment_members(
        &self,
        req: Request<pb::ListSegmentMembersRequest>,
    ) -> Reply<pb::SegmentMembersPage> {
        self.access
            .admit(&req, "ListSegmentMembers", &req.get_ref().tenant_id)
            .await?;
        let r = req.into_inner();
        let tenant = TenantId::parse(r.tenant_id)?;
        let limit = limit(r.limit, DEFAULT_SEGMENT_PAGE, MAX_SEGMENT_PAGE)?;
        let (member_ids, next) = self
            .members
            .segment_members(&tenant, &r.segment_code, cursor(&r.cursor), limit)
            .await?;
        Ok(Response::new(pb::SegmentMembersPage {
            member_ids,
            next_cursor: next.unwrap_or_default(),
        }))
    }

    async fn merge_members(&self, req: Request<pb::MergeMembersRequest>) -> Reply<pb::Merge> {
        let r = req.get_ref();
        let target = format!("member:{}/{}", r.tenant_id, r.survivor_member_id);
        let admitted = self
            .access
            .admit(&req, "MergeMembers", &r.tenant_id)
            .await?;
        let r = req.into_inner();
        let result = async {
            let tenant = TenantId::parse(r.tenant_id)?;
            let survivor = MemberId::parse(r.survivor_member_id)?;
            let duplicate = MemberId::parse(r.duplicate_member_id)?;
            let record = self.members.merge(&tenant, &survivor, &duplicate).await?;
            Ok(convert::merge(record))
        };
        self.write(admitted, &target, result).await
    }

    async fn get_merge(&self, req: Request<pb::MergeRef>) -> Reply<pb::Merge> {
        self.access
            .admit(&req, "GetMerge", &req.get_ref().tenant_id)
            .await?;
        let r = req.into_inner();
        let tenant = TenantId::parse(r.tenant_id)?;
        let record = self.members.merge_record(&tenant, &r.merge_id).await?;
        Ok(Response::new(convert::merge(record)))
    }

    async fn reverse_merge(&self, req: Request<pb::MergeRef>) -> Reply<pb::Merge> {
        let r = req.get_ref();
        let target = format!("merge:{}/{}", r.tenant_id, r.merge_id);
        let admitted = self
            .access
            .admit(&req, "ReverseMerge", &r.tenant_id)
            .await?;
        let r = req.into_inner();
        let result = async {
            let tenant = TenantId::parse(r.tenant_id)?;
            let record = self.members.reverse_merge(&tenant, &r.merge_id).await?;
            Ok(convert::merge(record))
        };
        self.write(admitted, &target, result).await
    }
}

#[cfg(test)]
mod tests;
