//! The real ledger in process, on its own embedded store, whose next reply to a hold or a
//! capture can be lost after the write was applied (as when the calling process dies, or
//! the network drops the answer), or refused before it is (the ledger down).

use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::{ManualClock, ServiceError};
use loyalty_ledger::client::{InProcessLedger, LedgerClient};
use loyalty_ledger::store::embedded::EmbeddedStore;
use loyalty_ledger::{Ledger, LedgerPorts};
use loyalty_proto::ledger::v1 as pb;
use std::sync::{Arc, Mutex};

/// The real ledger, whose next reply to one kind of write can be lost after the write was
/// applied (as when the calling process dies, or the network drops the answer).
pub struct LossyLedger {
    real: InProcessLedger,
    lose_next: Mutex<Option<&'static str>>,
    /// The next hold is refused before it is applied (the ledger unreachable).
    down_once: std::sync::atomic::AtomicBool,
}

impl LossyLedger {
    /// The ledger on a store in `dir`, on `clock`.
    pub fn on(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Self {
        let store = EmbeddedStore::open(dir).unwrap();
        let ports = LedgerPorts {
            wallets: Arc::new(store.clone()),
            rules: Arc::new(store.clone()),
            transfers: Arc::new(store.clone()),
            due: Arc::new(store),
        };
        Self {
            real: InProcessLedger::new(Ledger::new(ports, clock.clone())),
            lose_next: Mutex::new(None),
            down_once: Default::default(),
        }
    }

    pub fn down_once(&self) {
        self.down_once
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Opens `member`'s wallet of tenant `acme` with `points`.
    pub async fn give(&self, member: &str, points: i64) {
        let open = pb::OpenWalletRequest {
            wallet: Some(acme(member)),
            idempotency_key: format!("open-{member}"),
        };
        self.real.open_wallet(open).await.unwrap();
        let adjust = pb::AdjustRequest {
            wallet: Some(acme(member)),
            idempotency_key: format!("give-{member}"),
            points,
            reason: "test".into(),
        };
        self.real.adjust(adjust).await.unwrap();
    }

    /// (available, held) points of `member` of `acme`.
    pub async fn points(&self, member: &str) -> (i64, i64) {
        let b = self.real.get_balance(acme(member)).await.unwrap();
        (b.points_available, b.points_held)
    }

    /// Bonus stored value of `member` of `acme` (minor units).
    #[allow(dead_code)] // Each test binary compiles this module; not every one uses it.
    pub async fn bonus(&self, member: &str) -> i64 {
        self.real
            .get_balance(acme(member))
            .await
            .unwrap()
            .bonus_value
    }

    pub fn lose_next(&self, what: &'static str) {
        *self.lose_next.lock().unwrap() = Some(what);
    }

    fn lost(&self, what: &str) -> bool {
        let mut next = self.lose_next.lock().unwrap();
        let lost = *next == Some(what);
        if lost {
            *next = None;
        }
        lost
    }

    fn after<T>(&self, what: &str, reply: ServiceResult<T>) -> ServiceResult<T> {
        if self.lost(what) {
            return Err(ServiceError::unavailable("the ledger's reply was lost"));
        }
        reply
    }
}

fn acme(member: &str) -> pb::WalletRef {
    pb::WalletRef {
        tenant_id: "acme".into(),
        member_id: member.into(),
    }
}

fn unused() -> ServiceError {
    ServiceError::internal("not used by the mall")
}

#[async_trait]
impl LedgerClient for LossyLedger {
    async fn open_wallet(&self, r: pb::OpenWalletRequest) -> ServiceResult<pb::WriteResult> {
        self.real.open_wallet(r).await
    }
    async fn earn(&self, _: pb::EarnRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn redeem(&self, r: pb::RedeemRequest) -> ServiceResult<pb::WriteResult> {
        if self
            .down_once
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(ServiceError::unavailable("the ledger is down"));
        }
        let reply = self.real.redeem(r).await;
        self.after("redeem", reply)
    }
    async fn capture_hold(&self, r: pb::HoldActionRequest) -> ServiceResult<pb::WriteResult> {
        let reply = self.real.capture_hold(r).await;
        self.after("capture", reply)
    }
    async fn void_hold(&self, r: pb::HoldActionRequest) -> ServiceResult<pb::WriteResult> {
        self.real.void_hold(r).await
    }
    async fn reverse(&self, r: pb::ReverseRequest) -> ServiceResult<pb::WriteResult> {
        self.real.reverse(r).await
    }
    async fn adjust(&self, r: pb::AdjustRequest) -> ServiceResult<pb::WriteResult> {
        self.real.adjust(r).await
    }
    async fn adjust_bonus_value(
        &self,
        r: pb::AdjustBonusValueRequest,
    ) -> ServiceResult<pb::WriteResult> {
        self.real.adjust_bonus_value(r).await
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
    async fn get_balance(&self, r: pb::WalletRef) -> ServiceResult<pb::Balance> {
        self.real.get_balance(r).await
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
