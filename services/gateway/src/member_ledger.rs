//! The member service's way into a ledger in another process (`--target gateway`): orders
//! earn, merges move points, and tiers measured in points read balances over the ledger's
//! gRPC API, with the caller's own credential forwarded (the ledger checks it again). Work
//! with no caller (a scheduled review) cannot reach a remote ledger this way: tiers measured
//! in points are then reviewed on orders and on request only.

use crate::state::LedgerClient;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_member::orders::{LedgerPort, Order};
use loyalty_proto::ledger::v1 as pb;

pub struct RemoteLedger(pub LedgerClient);

fn wallet(tenant: &str, member: &str) -> Option<pb::WalletRef> {
    Some(pb::WalletRef {
        tenant_id: tenant.into(),
        member_id: member.into(),
    })
}

impl RemoteLedger {
    async fn open(&self, tenant: &str, member: &str) -> ServiceResult<()> {
        let request = pb::OpenWalletRequest {
            wallet: wallet(tenant, member),
            idempotency_key: format!("open.{member}"),
        };
        self.0.clone().open_wallet(request).await?;
        Ok(())
    }
}

#[async_trait]
impl LedgerPort for RemoteLedger {
    async fn earn(
        &self,
        tenant: &str,
        member: &str,
        order: &Order,
        tier_multiplier_bp: u32,
    ) -> ServiceResult<Option<i64>> {
        let request = pb::EarnRequest {
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
            occurred_at_ms: if order.at_given { order.at.0 } else { 0 },
            tier_multiplier_bp,
        };
        let reply = match self.0.clone().earn(request.clone()).await {
            Err(status) => match ServiceError::from(status) {
                e if e.code == ErrorCode::WalletNotFound => {
                    self.open(tenant, member).await?;
                    self.0.clone().earn(request).await?
                }
                e if e.code == ErrorCode::RulesNotFound => return Ok(None),
                e => return Err(e),
            },
            Ok(reply) => reply,
        };
        let points = reply
            .into_inner()
            .entries
            .iter()
            .filter_map(|e| e.deltas.as_ref())
            .map(|d| d.points_available + d.points_pending)
            .sum();
        Ok(Some(points))
    }

    async fn points(&self, tenant: &str, member: &str) -> ServiceResult<Option<i64>> {
        let Some(wallet) = wallet(tenant, member) else {
            return Ok(None);
        };
        match self.0.clone().get_balance(wallet).await {
            Ok(b) => Ok(Some(b.into_inner().points_available)),
            Err(status) => match ServiceError::from(status) {
                e if e.code == ErrorCode::WalletNotFound => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn transfer(
        &self,
        tenant: &str,
        from: &str,
        to: &str,
        points: i64,
        key: &str,
    ) -> ServiceResult<()> {
        self.open(tenant, to).await?;
        let request = pb::TransferRequest {
            tenant_id: tenant.into(),
            from_member_id: from.into(),
            to_member_id: to.into(),
            idempotency_key: key.into(),
            points,
        };
        let reply = self.0.clone().transfer(request).await?.into_inner();
        if reply.state == "completed" {
            Ok(())
        } else {
            Err(ServiceError::new(
                ErrorCode::Unavailable,
                format!("moving {points} points ended {}; retry", reply.state),
            ))
        }
    }
}
