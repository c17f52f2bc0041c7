//! The member service's way into the ledger ([`LedgerPort`]), through the ledger's client, in
//! this process or in another: an order earns points under the order id as idempotency key,
//! with the member's tier multiplier, and a member without a wallet gets one first; merges
//! move points with the ledger's transfer; tiers measured in points read balances.
//!
//! In another process the call carries the caller of the request being served, and the
//! ledger checks it again; work with no caller (a scheduled review) cannot reach a remote
//! ledger this way, so tiers measured in points are then reviewed on orders and on request.

use crate::orders::{LedgerPort, Order};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_ledger::client::LedgerClient;
use loyalty_proto::ledger::v1 as pb;
use std::sync::Arc;

/// The ledger, through its client.
pub struct Ledger(pub Arc<dyn LedgerClient>);

fn wallet(tenant: &TenantId, member: &MemberId) -> Option<pb::WalletRef> {
    Some(pb::WalletRef {
        tenant_id: tenant.to_string(),
        member_id: member.to_string(),
    })
}

/// The one mapping of a recorded order to the ledger's earn request.
fn earn_request(
    tenant: &TenantId,
    member: &MemberId,
    order: &Order,
    multiplier_bp: u32,
) -> pb::EarnRequest {
    pb::EarnRequest {
        wallet: wallet(tenant, member),
        idempotency_key: format!("order.{}", order.order_id),
        order_id: order.order_id.clone(),
        order_total: order.total,
        lines: order
            .lines
            .iter()
            .map(|l| pb::OrderLine {
                sku: l.sku.clone(),
                category: l.category.clone(),
                amount: l.amount,
            })
            .collect(),
        // Without a time from the till the ledger stamps it, so a retry is the same request.
        occurred_at_ms: if order.at_given { order.at.0 } else { 0 },
        tier_multiplier_bp: multiplier_bp,
    }
}

impl Ledger {
    async fn open(&self, tenant: &TenantId, member: &MemberId) -> ServiceResult<()> {
        let request = pb::OpenWalletRequest {
            wallet: wallet(tenant, member),
            idempotency_key: format!("open.{member}"),
        };
        self.0.open_wallet(request).await.map(drop)
    }
}

#[async_trait]
impl LedgerPort for Ledger {
    async fn earn(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        order: &Order,
        tier_multiplier_bp: u32,
    ) -> ServiceResult<Option<i64>> {
        let request = earn_request(tenant, member, order, tier_multiplier_bp);
        let reply = match self.0.earn(request.clone()).await {
            Err(e) if e.code == ErrorCode::WalletNotFound => {
                self.open(tenant, member).await?;
                self.0.earn(request).await?
            }
            // No earning rules yet: the order is recorded, and earns nothing.
            Err(e) if e.code == ErrorCode::RulesNotFound => return Ok(None),
            other => other?,
        };
        let points = reply
            .entries
            .iter()
            .filter_map(|e| e.deltas.as_ref())
            .map(|d| d.points_available + d.points_pending)
            .sum();
        Ok(Some(points))
    }

    async fn points(&self, tenant: &TenantId, member: &MemberId) -> ServiceResult<Option<i64>> {
        let Some(wallet) = wallet(tenant, member) else {
            return Ok(None);
        };
        match self.0.get_balance(wallet).await {
            Ok(balance) => Ok(Some(balance.points_available)),
            Err(e) if e.code == ErrorCode::WalletNotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn transfer(
        &self,
        tenant: &TenantId,
        from: &MemberId,
        to: &MemberId,
        points: i64,
        key: &str,
    ) -> ServiceResult<()> {
        self.open(tenant, to).await?;
        let request = pb::TransferRequest {
            tenant_id: tenant.to_string(),
            from_member_id: from.to_string(),
            to_member_id: to.to_string(),
            idempotency_key: key.into(),
            points,
        };
        let reply = self.0.transfer(request).await?;
        if reply.state == "completed" {
            return Ok(());
        }
        Err(ServiceError::new(
            ErrorCode::parse(&reply.failure).unwrap_or(ErrorCode::Unavailable),
            format!("moving {points} points ended {}; retry", reply.state),
        ))
    }
}
