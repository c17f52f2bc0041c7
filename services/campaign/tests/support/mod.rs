//! A ledger for the campaign service's tests: one wallet per member, adjustments kept by
//! idempotency key as the real ledger keeps them, a debit past the balance refused, and a
//! switch that takes it down; and the plainest coupon template.

#![allow(clippy::unwrap_used, dead_code)] // Test code; not every test binary uses every part.

pub mod lossy;

use async_trait::async_trait;
use loyalty_campaign::campaign::{Campaign, Step};
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::template::{Benefit, CouponTemplate, Eligibility, Stacking, Validity};
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::TenantId;
use loyalty_ledger::client::LedgerClient;
use loyalty_proto::ledger::v1 as pb;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// A ledger of one wallet per member that keeps adjustments by idempotency key, as the real
/// one does, and refuses a debit past the balance.
#[derive(Default)]
pub struct Ledger {
    pub applied: Mutex<HashMap<String, i64>>,
    pub balances: Mutex<HashMap<String, i64>>,
    /// Bonus stored value per member.
    pub bonus: Mutex<HashMap<String, i64>>,
    pub down: AtomicBool,
}

impl Ledger {
    pub fn balance(&self, member: &str) -> i64 {
        *self.balances.lock().unwrap().get(member).unwrap_or(&0)
    }

    pub fn bonus_value(&self, member: &str) -> i64 {
        *self.bonus.lock().unwrap().get(member).unwrap_or(&0)
    }

    pub fn spend(&self, member: &str, points: i64) {
        *self
            .balances
            .lock()
            .unwrap()
            .entry(member.into())
            .or_default() -= points;
    }
}

fn unused() -> ServiceError {
    ServiceError::internal("payouts only adjust and read balances")
}

#[async_trait]
impl LedgerClient for Ledger {
    async fn adjust(&self, r: pb::AdjustRequest) -> ServiceResult<pb::WriteResult> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ServiceError::unavailable("the ledger is down"));
        }
        let member = r.wallet.unwrap().member_id;
        let mut applied = self.applied.lock().unwrap();
        if let Some(points) = applied.get(&r.idempotency_key) {
            assert_eq!(
                *points, r.points,
                "a key is sent again with the same points"
            );
            return Ok(pb::WriteResult {
                replayed: true,
                ..Default::default()
            });
        }
        let mut balances = self.balances.lock().unwrap();
        let balance = balances.entry(member).or_default();
        if *balance + r.points < 0 {
            return Err(ServiceError::new(
                ErrorCode::InsufficientPoints,
                "not enough points",
            ));
        }
        *balance += r.points;
        let entry_id = format!("e{}", applied.len() + 1);
        applied.insert(r.idempotency_key, r.points);
        Ok(pb::WriteResult {
            entries: vec![pb::Entry {
                entry_id,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    async fn adjust_bonus_value(
        &self,
        r: pb::AdjustBonusValueRequest,
    ) -> ServiceResult<pb::WriteResult> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ServiceError::unavailable("the ledger is down"));
        }
        let member = r.wallet.unwrap().member_id;
        let mut applied = self.applied.lock().unwrap();
        if let Some(amount) = applied.get(&r.idempotency_key) {
            assert_eq!(
                *amount, r.amount,
                "a key is sent again with the same amount"
            );
            return Ok(pb::WriteResult {
                replayed: true,
                ..Default::default()
            });
        }
        let mut bonus = self.bonus.lock().unwrap();
        let held = bonus.entry(member).or_default();
        if *held + r.amount < 0 {
            return Err(ServiceError::new(
                ErrorCode::InsufficientStoredValue,
                "not enough bonus stored value",
            ));
        }
        *held += r.amount;
        let entry_id = format!("e{}", applied.len() + 1);
        applied.insert(r.idempotency_key, r.amount);
        Ok(pb::WriteResult {
            entries: vec![pb::Entry {
                entry_id,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    async fn get_balance(&self, r: pb::WalletRef) -> ServiceResult<pb::Balance> {
        Ok(pb::Balance {
            points_available: self.balance(&r.member_id),
            bonus_value: self.bonus_value(&r.member_id),
            ..Default::default()
        })
    }

    async fn open_wallet(&self, _: pb::OpenWalletRequest) -> ServiceResult<pb::WriteResult> {
        Ok(pb::WriteResult::default())
    }
    async fn earn(&self, _: pb::EarnRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn redeem(&self, _: pb::RedeemRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn capture_hold(&self, _: pb::HoldActionRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn void_hold(&self, _: pb::HoldActionRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn reverse(&self, _: pb::ReverseRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn transfer(&self, _: pb::TransferRequest) -> ServiceResult<pb::TransferResult> {
        Err(unused())
    }
    async fn top_up(&self, _: pb::TopUpRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn spend(&self, _: pb::SpendRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn refund(&self, _: pb::RefundRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn list_history(&self, _: pb::ListHistoryRequest) -> ServiceResult<pb::HistoryPage> {
        Err(unused())
    }
    async fn list_expiring(&self, _: pb::ListExpiringRequest) -> ServiceResult<pb::ExpiringPoints> {
        Err(unused())
    }
    async fn put_rules(&self, _: pb::PutRulesRequest) -> ServiceResult<pb::RuleSet> {
        Err(unused())
    }
    async fn get_rules(&self, _: pb::GetRulesRequest) -> ServiceResult<pb::RuleSet> {
        Err(unused())
    }
}

/// `amount` off any cart, one use per code, valid 30 days from issue, no other limit.
pub fn amount_off(id: &str, amount: i64) -> CouponTemplate {
    CouponTemplate {
        id: id.into(),
        name: format!("{id} off"),
        benefit: Benefit::AmountOff { amount },
        min_spend: 0,
        eligible: Eligibility::default(),
        validity: Validity::DaysFromIssue { days: 30 },
        per_member_limit: None,
        total_limit: None,
        uses_per_code: 1,
        stacking: Stacking::Exclusive,
        priority: 0,
        active: true,
    }
}

/// Saves `campaign` as `maker`, submits it and has `checker` approve it.
pub async fn approve(campaigns: &Campaigns, tenant: &TenantId, campaign: Campaign) {
    let id = campaign.id.clone();
    campaigns
        .save_campaign(tenant, campaign, "maker", None)
        .await
        .unwrap();
    for (step, by) in [(Step::Submit, "maker"), (Step::Approve, "checker")] {
        campaigns
            .step_campaign(tenant, &id, step, by, None)
            .await
            .unwrap();
    }
}
