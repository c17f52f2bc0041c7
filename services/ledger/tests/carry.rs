//! In two regions, a commit whose acknowledgement was lost may be in the home's datacenter
//! alone; the next commit writes its rows again (decision 0019, `carry.rs`). Here a store
//! that says its commits reach both regions, and can apply a commit yet answer that it
//! failed (the other region's acknowledgement lost), shows what each commit carries.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

mod common;

use async_trait::async_trait;
use common::{earn, ports, start, wallet};
use loyalty_common::ManualClock;
use loyalty_common::error::{ServiceError, ServiceResult};
use loyalty_common::ids::{EntryId, IdempotencyKey};
use loyalty_common::write_scope::{WRITE_SCOPE, WriteScope};
use loyalty_ledger::command::Command;
use loyalty_ledger::model::{Entry, IdempotencyRecord, ReversalTracker, WalletHead, WalletKey};
use loyalty_ledger::rules::RuleSet;
use loyalty_ledger::store::embedded::EmbeddedStore;
use loyalty_ledger::store::{Applied, WalletCommit, WalletRepository};
use loyalty_ledger::{Ledger, LedgerPorts};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What a commit was given: its key, the keys of the records it carried, and those its
/// head lists as not known to be in both regions.
type Given = (String, Vec<String>, Vec<String>);

/// The embedded store, as if its commits reached both regions, keeping what it was given.
struct BothRegions {
    inner: EmbeddedStore,
    /// The next commit applies, and is answered as failed.
    lose_next_acknowledgement: AtomicBool,
    /// Each commit's key and the keys of the records it carried.
    commits: Mutex<Vec<Given>>,
}

#[async_trait]
impl WalletRepository for BothRegions {
    async fn head(&self, wallet: &WalletKey) -> ServiceResult<Option<WalletHead>> {
        self.inner.head(wallet).await
    }
    async fn idempotency(
        &self,
        wallet: &WalletKey,
        key: &IdempotencyKey,
    ) -> ServiceResult<Option<IdempotencyRecord>> {
        self.inner.idempotency(wallet, key).await
    }
    async fn entry(&self, wallet: &WalletKey, id: EntryId) -> ServiceResult<Option<Entry>> {
        self.inner.entry(wallet, id).await
    }
    async fn reversal(
        &self,
        wallet: &WalletKey,
        target: EntryId,
    ) -> ServiceResult<Option<ReversalTracker>> {
        self.inner.reversal(wallet, target).await
    }
    async fn history(
        &self,
        wallet: &WalletKey,
        before: Option<EntryId>,
        limit: usize,
    ) -> ServiceResult<Vec<Entry>> {
        self.inner.history(wallet, before, limit).await
    }
    async fn commit(&self, commit: WalletCommit) -> ServiceResult<Applied> {
        let key = commit.idempotency.as_ref().map(|r| r.key.to_string());
        let carried = commit.carried.iter().map(|r| r.key.to_string()).collect();
        let listed = commit
            .head
            .unconfirmed
            .iter()
            .map(|k| k.to_string())
            .collect();
        self.commits
            .lock()
            .unwrap()
            .push((key.unwrap_or_default(), carried, listed));
        let applied = self.inner.commit(commit).await?;
        match self.lose_next_acknowledgement.swap(false, Ordering::SeqCst) {
            true => Err(ServiceError::unavailable("the other region did not answer")),
            false => Ok(applied),
        }
    }
    fn commits_reach_both_regions(&self) -> bool {
        true
    }
}

fn ledger(store: &Arc<BothRegions>) -> Arc<Ledger> {
    ledger_at(store, ManualClock::new(start()))
}

fn ledger_at(store: &Arc<BothRegions>, clock: Arc<ManualClock>) -> Arc<Ledger> {
    let ports = LedgerPorts {
        wallets: Arc::clone(store) as Arc<dyn WalletRepository>,
        ..ports(&store.inner)
    };
    Ledger::new(ports, clock)
}

fn both_regions() -> (Arc<BothRegions>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(BothRegions {
        inner: EmbeddedStore::open(dir.path()).unwrap(),
        lose_next_acknowledgement: AtomicBool::new(false),
        commits: Mutex::default(),
    });
    (store, dir)
}

const HOME: WriteScope = WriteScope {
    epoch: Some(3),
    deadline: None,
};

/// Housekeeping's commits carry what the head lists too: its head copies their effects.
#[tokio::test]
async fn housekeeping_after_a_lost_acknowledgement_carries_its_rows() {
    let (store, _dir) = both_regions();
    let clock = ManualClock::new(start());
    let ledger = ledger_at(&store, clock.clone());
    let w = wallet("kept");
    let key = |k: &str| IdempotencyKey::parse(k).unwrap();
    let rules = RuleSet {
        lock_days: 7,
        ..RuleSet::default()
    };
    let (rules_key, open_key, pending) = (key("rules"), key("open"), key("pending"));
    let put = ledger.put_rules(&w.tenant, &rules_key, rules, None);
    WRITE_SCOPE.scope(HOME, put).await.unwrap();
    let open = ledger.execute(&w, &open_key, Command::Open);
    WRITE_SCOPE.scope(HOME, open).await.unwrap();
    store
        .lose_next_acknowledgement
        .store(true, Ordering::SeqCst);
    let earn = ledger.execute(&w, &pending, earn(30_000, start()));
    assert!(WRITE_SCOPE.scope(HOME, earn).await.is_err());
    clock.advance_secs(7 * 86_400);
    let housekept = WRITE_SCOPE.scope(HOME, ledger.housekeep(&w)).await.unwrap();
    assert_eq!(housekept, 1, "the pending points activated");
    let last = store.commits.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        last,
        (
            String::new(),
            vec!["pending".to_string()],
            vec!["pending".to_string()]
        )
    );
}

#[tokio::test]
async fn the_commit_or_replay_after_one_not_acknowledged_carries_its_rows() {
    let (store, _dir) = both_regions();
    let home = HOME;
    let w = wallet("carried");
    let run = |ledger: Arc<Ledger>, key: &str, command: Command| {
        let (w, key) = (w.clone(), IdempotencyKey::parse(key).unwrap());
        WRITE_SCOPE.scope(home, async move { ledger.execute(&w, &key, command).await })
    };
    let first = ledger(&store);
    run(Arc::clone(&first), "open", Command::Open)
        .await
        .unwrap();
    run(Arc::clone(&first), "k1", earn(10_000, start()))
        .await
        .unwrap();
    store
        .lose_next_acknowledgement
        .store(true, Ordering::SeqCst);
    let lost = run(Arc::clone(&first), "k2", earn(20_000, start())).await;
    assert!(lost.is_err(), "answered as failed, applied in the home");
    run(Arc::clone(&first), "k3", earn(30_000, start()))
        .await
        .unwrap();
    // A lost acknowledgement, then the client's retry: answered once what the head lists
    // is written again (an empty commit carrying it).
    store
        .lose_next_acknowledgement
        .store(true, Ordering::SeqCst);
    let lost = run(Arc::clone(&first), "k4", earn(40_000, start())).await;
    assert!(lost.is_err());
    let retried = run(Arc::clone(&first), "k4", earn(40_000, start())).await;
    assert!(retried.unwrap().replayed);
    run(Arc::clone(&first), "k5", earn(50_000, start()))
        .await
        .unwrap();
    // After a restart nothing is known acknowledged: the first commit carries what is listed.
    let restarted = ledger(&store);
    run(restarted, "k6", earn(60_000, start())).await.unwrap();
    let commits = store.commits.lock().unwrap().clone();
    let seen: Vec<(&str, Vec<&str>, Vec<&str>)> = commits
        .iter()
        .map(|(k, c, l)| {
            let c = c.iter().map(String::as_str).collect();
            let l = l.iter().map(String::as_str).collect();
            (k.as_str(), c, l)
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("open", vec![], vec!["open"]),
            ("k1", vec![], vec!["k1"]),
            ("k2", vec![], vec!["k2"]),
            ("k3", vec!["k2"], vec!["k2", "k3"]),
            ("k4", vec![], vec!["k4"]),
            ("", vec!["k4"], vec!["k4"]),
            ("k5", vec![], vec!["k5"]),
            ("k6", vec!["k5"], vec!["k5", "k6"]),
        ]
    );
    let head = store.head(&w).await.unwrap().unwrap();
    assert_eq!(head.balances.points_available, 2_100, "each earn once");
}
