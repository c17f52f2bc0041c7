//! The member service's way into the ledger in this process: an order earns points under
//! the order id as idempotency key, with the member's tier multiplier; a member without a
//! wallet gets one first. Merges move points with the ledger's transfer. The gateway has already checked that the caller may record
//! orders, so the call goes to the ledger service directly.

use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{IdempotencyKey, MemberId, TenantId};
use loyalty_ledger::command::Command;
use loyalty_ledger::model::WalletKey;
use loyalty_ledger::rules::{Order as LedgerOrder, OrderLine as LedgerLine};
use loyalty_ledger::service::Ledger;
use loyalty_ledger::transfer::TransferState;
use loyalty_member::orders::{LedgerPort, Order};
use std::sync::Arc;

pub struct InProcessLedger(pub Arc<Ledger>);

fn wallet(tenant: &str, member: &str) -> ServiceResult<WalletKey> {
    Ok(WalletKey {
        tenant: TenantId::parse(tenant)?,
        member: MemberId::parse(member)?,
    })
}

#[async_trait]
impl LedgerPort for InProcessLedger {
    async fn earn(
        &self,
        tenant: &str,
        member: &str,
        order: &Order,
        tier_multiplier_bp: u32,
    ) -> ServiceResult<Option<i64>> {
        let wallet = wallet(tenant, member)?;
        let key = IdempotencyKey::parse(format!("order.{}", order.order_id))?;
        let command = Command::Earn {
            order: LedgerOrder {
                order_id: order.order_id.clone(),
                total: order.total,
                lines: order
                    .lines
                    .iter()
                    .map(|l| LedgerLine {
                        sku: l.sku.clone(),
                        category: l.category.clone(),
                        amount: l.amount,
                    })
                    .collect(),
                occurred_at: order.at_given.then_some(order.at),
                tier_multiplier_bp: Some(tier_multiplier_bp),
            },
        };
        let written = match self.0.execute(&wallet, &key, command.clone()).await {
            Err(e) if e.code == ErrorCode::WalletNotFound => {
                let open = IdempotencyKey::parse(format!("open.{member}"))?;
                self.0.execute(&wallet, &open, Command::Open).await?;
                self.0.execute(&wallet, &key, command).await?
            }
            // No earning rules yet: the order is recorded, and earns nothing.
            Err(e) if e.code == ErrorCode::RulesNotFound => return Ok(None),
            other => other?,
        };
        let points = written
            .outcome
            .entries
            .iter()
            .map(|e| e.deltas.points_available + e.deltas.points_pending)
            .sum();
        Ok(Some(points))
    }

    async fn transfer(
        &self,
        tenant: &str,
        from: &str,
        to: &str,
        points: i64,
        key: &str,
    ) -> ServiceResult<()> {
        let receiver = wallet(tenant, to)?;
        let open = IdempotencyKey::parse(format!("open.{to}"))?;
        self.0.execute(&receiver, &open, Command::Open).await?;
        let outcome = self
            .0
            .transfer(
                &receiver.tenant,
                &MemberId::parse(from)?,
                &receiver.member,
                &IdempotencyKey::parse(key)?,
                points,
            )
            .await?;
        match outcome.record.state {
            TransferState::Completed => Ok(()),
            state => Err(ServiceError::new(
                outcome
                    .record
                    .failure
                    .as_deref()
                    .and_then(ErrorCode::parse)
                    .unwrap_or(ErrorCode::Unavailable),
                format!("moving {points} points ended {}; retry", state.as_str()),
            )),
        }
    }

    async fn points(&self, tenant: &str, member: &str) -> ServiceResult<Option<i64>> {
        match self.0.balance(&wallet(tenant, member)?).await {
            Ok(b) => Ok(Some(b.points_available)),
            Err(e) if e.code == ErrorCode::WalletNotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
