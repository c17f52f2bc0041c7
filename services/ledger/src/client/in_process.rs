//! The ledger in this process: each request is parsed and checked as the gRPC port would
//! ([`crate::grpc::convert`]), then run by the [`Ledger`] directly.

use super::LedgerClient;
use crate::command::Command;
use crate::grpc::convert::{self, *};
use crate::service::Ledger;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{HoldId, MemberId, TenantId};
use loyalty_common::money::{non_zero, positive};
use loyalty_proto::ledger::v1 as pb;
use std::sync::Arc;

/// The ledger of this process, as a client.
#[derive(Clone)]
pub struct InProcessLedger {
    ledger: Arc<Ledger>,
}

impl InProcessLedger {
    pub fn new(ledger: Arc<Ledger>) -> Self {
        Self { ledger }
    }

    async fn write(
        &self,
        wallet: Option<pb::WalletRef>,
        key: &str,
        command: ServiceResult<Command>,
    ) -> ServiceResult<pb::WriteResult> {
        let wallet = wallet_key(wallet)?;
        let key = idempotency_key(key)?;
        let written = self.ledger.execute(&wallet, &key, command?).await?;
        Ok(write_result(&wallet, written))
    }
}

#[async_trait]
impl LedgerClient for InProcessLedger {
    async fn open_wallet(&self, r: pb::OpenWalletRequest) -> ServiceResult<pb::WriteResult> {
        self.write(r.wallet, &r.idempotency_key, Ok(Command::Open))
            .await
    }

    async fn earn(&self, r: pb::EarnRequest) -> ServiceResult<pb::WriteResult> {
        let command = earn_command(&r, self.ledger.now());
        self.write(r.wallet, &r.idempotency_key, command).await
    }

    async fn redeem(&self, r: pb::RedeemRequest) -> ServiceResult<pb::WriteResult> {
        let command = (|| {
            let points = positive("points", r.points)?;
            let reference = text("reference", r.reference.clone(), false)?;
            Ok(match r.capture {
                true => Command::RedeemNow { points, reference },
                false => Command::Redeem { points, reference },
            })
        })();
        self.write(r.wallet, &r.idempotency_key, command).await
    }

    async fn capture_hold(&self, r: pb::HoldActionRequest) -> ServiceResult<pb::WriteResult> {
        let command = HoldId::parse(&r.hold_id).map(|hold| Command::Capture { hold });
        self.write(r.wallet, &r.idempotency_key, command).await
    }

    async fn void_hold(&self, r: pb::HoldActionRequest) -> ServiceResult<pb::WriteResult> {
        let command = HoldId::parse(&r.hold_id).map(|hold| Command::Void { hold });
        self.write(r.wallet, &r.idempotency_key, command).await
    }

    async fn reverse(&self, r: pb::ReverseRequest) -> ServiceResult<pb::WriteResult> {
        let command = (|| {
            Ok(Command::Reverse {
                entry: entry_id("entry_id", &r.entry_id)?,
                points: optional_amount("points", r.points)?,
                reason: text("reason", r.reason.clone(), false)?,
            })
        })();
        self.write(r.wallet, &r.idempotency_key, command).await
    }

    async fn adjust(&self, r: pb::AdjustRequest) -> ServiceResult<pb::WriteResult> {
        let command = (|| {
            Ok(Command::Adjust {
                points: non_zero("points", r.points)?,
                reason: text("reason", r.reason.clone(), true)?,
            })
        })();
        self.write(r.wallet, &r.idempotency_key, command).await
    }

    async fn adjust_bonus_value(
        &self,
        r: pb::AdjustBonusValueRequest,
    ) -> ServiceResult<pb::WriteResult> {
        let command = (|| {
            Ok(Command::AdjustBonusValue {
                amount: non_zero("amount", r.amount)?,
                reason: text("reason", r.reason.clone(), true)?,
            })
        })();
        self.write(r.wallet, &r.idempotency_key, command).await
    }

    async fn transfer(&self, r: pb::TransferRequest) -> ServiceResult<pb::TransferResult> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let from = MemberId::parse(r.from_member_id)?;
        let to = MemberId::parse(r.to_member_id)?;
        let key = idempotency_key(&r.idempotency_key)?;
        let points = positive("points", r.points)?;
        let outcome = self
            .ledger
            .transfer(&tenant, &from, &to, &key, points)
            .await?;
        Ok(transfer_result(outcome))
    }

    async fn top_up(&self, r: pb::TopUpRequest) -> ServiceResult<pb::WriteResult> {
        let command = positive("amount", r.amount).map(|amount| Command::TopUp { amount });
        self.write(r.wallet, &r.idempotency_key, command).await
    }

    async fn spend(&self, r: pb::SpendRequest) -> ServiceResult<pb::WriteResult> {
        let command = (|| {
            Ok(Command::Spend {
                amount: positive("amount", r.amount)?,
                reference: text("reference", r.reference.clone(), false)?,
            })
        })();
        self.write(r.wallet, &r.idempotency_key, command).await
    }

    async fn refund(&self, r: pb::RefundRequest) -> ServiceResult<pb::WriteResult> {
        let command = (|| {
            Ok(Command::Refund {
                spend: entry_id("spend_entry_id", &r.spend_entry_id)?,
                amount: optional_amount("amount", r.amount)?,
            })
        })();
        self.write(r.wallet, &r.idempotency_key, command).await
    }

    async fn get_balance(&self, r: pb::WalletRef) -> ServiceResult<pb::Balance> {
        let wallet = wallet_key(Some(r))?;
        let view = self.ledger.balance(&wallet).await?;
        Ok(balance(&wallet, &view))
    }

    async fn list_history(&self, r: pb::ListHistoryRequest) -> ServiceResult<pb::HistoryPage> {
        let wallet = wallet_key(r.wallet)?;
        let before = match r.cursor.as_str() {
            "" => None,
            c => Some(entry_id("cursor", c)?),
        };
        let limit = match r.limit {
            0 => DEFAULT_PAGE,
            l if l > MAX_PAGE => {
                return Err(ServiceError::invalid(format!(
                    "limit must be at most {MAX_PAGE}"
                )));
            }
            l => l,
        };
        let (entries, next) = self.ledger.history(&wallet, before, limit as usize).await?;
        Ok(pb::HistoryPage {
            entries: entries.iter().map(entry).collect(),
            next_cursor: next.map(|c| c.to_string()).unwrap_or_default(),
        })
    }

    async fn list_expiring(&self, r: pb::ListExpiringRequest) -> ServiceResult<pb::ExpiringPoints> {
        let wallet = wallet_key(r.wallet)?;
        if r.within_days > 3650 {
            return Err(ServiceError::invalid("within_days must be at most 3650"));
        }
        let within = (r.within_days != 0).then_some(r.within_days);
        let lots = self.ledger.expiring(&wallet, within).await?;
        Ok(pb::ExpiringPoints {
            total_points: lots.iter().map(|l| l.points).sum(),
            lots: lots
                .iter()
                .map(|l| pb::ExpiringLot {
                    expires_at_ms: l.expires_at.map_or(0, |t| t.0),
                    points: l.points,
                })
                .collect(),
        })
    }

    async fn put_rules(&self, r: pb::PutRulesRequest) -> ServiceResult<pb::RuleSet> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let key = idempotency_key(&r.idempotency_key)?;
        let rules = convert::rules_from_proto(
            r.rules
                .ok_or_else(|| ServiceError::invalid("rules are required"))?,
        )?;
        let expected = (r.expected_version != 0).then_some(r.expected_version);
        let (stored, _) = self
            .ledger
            .put_rules(&tenant, &key, rules, expected)
            .await?;
        Ok(rules_to_proto(&tenant, &stored))
    }

    async fn get_rules(&self, r: pb::GetRulesRequest) -> ServiceResult<pb::RuleSet> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let rules = self.ledger.get_rules(&tenant, r.version).await?;
        Ok(rules_to_proto(&tenant, &rules))
    }
}
