//! Test helpers: a ledger on a throwaway embedded store with a manual clock.

#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use loyalty_common::ids::{IdempotencyKey, MemberId, TenantId};
use loyalty_common::{Clock, ManualClock, Timestamp};
use loyalty_ledger::command::Command;
use loyalty_ledger::model::{Deltas, WalletKey};
use loyalty_ledger::rules::{Order, OrderLine, RuleSet};
use loyalty_ledger::service::Written;
use loyalty_ledger::store::embedded::EmbeddedStore;
use loyalty_ledger::{Ledger, LedgerPorts};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Harness {
    pub ledger: Arc<Ledger>,
    pub clock: Arc<ManualClock>,
    pub store: EmbeddedStore,
    pub dir: tempfile::TempDir,
    keys: AtomicU64,
}

pub fn start() -> Timestamp {
    Timestamp::from_datetime(Utc.with_ymd_and_hms(2026, 1, 10, 9, 0, 0).unwrap())
}

pub fn ports(store: &EmbeddedStore) -> LedgerPorts {
    LedgerPorts {
        wallets: Arc::new(store.clone()),
        rules: Arc::new(store.clone()),
        transfers: Arc::new(store.clone()),
        due: Arc::new(store.clone()),
    }
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let clock = ManualClock::new(start());
        let ledger = Ledger::new(ports(&store), clock.clone());
        Self {
            ledger,
            clock,
            store,
            dir,
            keys: AtomicU64::new(0),
        }
    }

    /// A second ledger on the same store and clock, as after a restart.
    pub fn restarted(&self) -> Arc<Ledger> {
        Ledger::new(ports(&self.store), self.clock.clone())
    }

    pub fn key(&self) -> IdempotencyKey {
        IdempotencyKey::parse(format!("k{}", self.keys.fetch_add(1, Ordering::SeqCst))).unwrap()
    }

    pub async fn wallet(&self, member: &str) -> WalletKey {
        let w = wallet(member);
        self.ledger
            .execute(&w, &self.key(), Command::Open)
            .await
            .unwrap();
        w
    }

    pub async fn run(
        &self,
        w: &WalletKey,
        command: Command,
    ) -> loyalty_common::error::ServiceResult<Written> {
        self.ledger.execute(w, &self.key(), command).await
    }

    pub async fn rules(&self, rules: RuleSet) {
        self.ledger
            .put_rules(&tenant(), &self.key(), rules, None)
            .await
            .unwrap();
    }

    pub async fn earn(&self, w: &WalletKey, total: i64) -> Written {
        self.run(w, earn(total, self.clock.now())).await.unwrap()
    }

    /// Asserts the invariant: the sum of every entry's deltas equals the stored balances.
    pub async fn assert_entries_sum_to_balance(&self, w: &WalletKey) {
        let (entries, _) = self.ledger.history(w, None, 100_000).await.unwrap();
        let mut sum = Deltas::default();
        for e in &entries {
            sum.add(&e.deltas);
        }
        let head = loyalty_ledger::store::WalletRepository::head(&self.store, w)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sum, head.balances, "entries must sum to the balances");
        let lots: i64 = head.lots.iter().map(|l| l.points).sum();
        assert_eq!(
            lots - head.debt,
            head.balances.points_available,
            "lots must match available points"
        );
        let pending: i64 = head.pending.iter().map(|p| p.points).sum();
        assert_eq!(pending, head.balances.points_pending);
        let held: i64 = head.holds.iter().map(|h| h.points).sum();
        assert_eq!(held, head.balances.points_held);
    }
}

pub fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

pub fn wallet(member: &str) -> WalletKey {
    WalletKey {
        tenant: tenant(),
        member: MemberId::parse(member).unwrap(),
    }
}

pub fn earn(total: i64, at: Timestamp) -> Command {
    Command::Earn {
        order: Order {
            order_id: format!("order-{total}-{}", at.0),
            total,
            lines: vec![OrderLine {
                sku: "sku".into(),
                category: "general".into(),
                amount: total,
            }],
            occurred_at: Some(at),
            tier_multiplier_bp: None,
        },
    }
}
