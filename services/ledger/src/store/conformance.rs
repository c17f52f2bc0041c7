//! The ledger's ports, one behaviour per body: the suite every adapter of the ledger's store
//! passes (`tests/conformance.rs` runs it on the embedded store and on ScyllaDB). The keyspace
//! is shared by the whole run, so every body works on tenants of its own and reads global
//! listings (due wallets, unfinished transfers, the change log) only for them; times are near
//! the wall clock, where other tests write too.

#![allow(clippy::unwrap_used)] // A panic is a failed assertion with its location.

use loyalty_scylla::conformance;

use crate::model::{
    BalanceView, Deltas, Entry, EntryKind, IdempotencyRecord, ReversalTracker, WalletHead,
    WalletKey, WriteOutcome,
};
use crate::rules::RuleSet;
use crate::store::{
    Applied, ChangeFeed, DueIndex, DueWallet, RulesIdempotency, RulesRepository,
    TransferRepository, WalletCommit, WalletRepository,
};
use crate::transfer::{TransferRecord, TransferState};
use loyalty_common::Timestamp;
use loyalty_common::ids::{EntryId, IdempotencyKey, MemberId, TenantId};
use loyalty_events::trace::TraceContext;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The five ports of one store, and what keeps it alive.
pub struct Stores {
    pub wallets: Arc<dyn WalletRepository>,
    pub rules: Arc<dyn RulesRepository>,
    pub transfers: Arc<dyn TransferRepository>,
    pub due: Arc<dyn DueIndex>,
    pub feed: Arc<dyn ChangeFeed>,
    /// The embedded store's directory, removed when the stores are dropped.
    pub dir: Option<tempfile::TempDir>,
}

fn wall_clock() -> Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Timestamp(since.as_millis() as i64)
}

fn tenant() -> TenantId {
    TenantId::parse(conformance::unique("t")).unwrap()
}

fn wallet_of(tenant: &TenantId, member: &str) -> WalletKey {
    WalletKey {
        tenant: tenant.clone(),
        member: MemberId::parse(member).unwrap(),
    }
}

fn new_wallet() -> WalletKey {
    wallet_of(&tenant(), "alice")
}

/// Entry ids that grow, as the ledger's clock gives them: one millisecond apart.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn next_id() -> EntryId {
    let offset = NEXT_ID.fetch_add(1, Ordering::SeqCst);
    EntryId(ulid::Ulid::from_parts(
        wall_clock().0 as u64 + 1_000_000 + offset,
        u128::from(offset),
    ))
}

fn entry(kind: EntryKind, points: i64) -> Entry {
    Entry::new(
        next_id(),
        kind,
        wall_clock(),
        Deltas {
            points_available: points,
            ..Deltas::default()
        },
    )
}

fn head_at(wallet: &WalletKey, version: u64, points: i64) -> WalletHead {
    let mut head = WalletHead::new(wallet.clone(), Timestamp(1_700_000_000_000));
    head.version = version;
    head.balances.points_available = points;
    head
}

/// The commit taking `wallet` from `version` to `version + 1` with `entries`.
fn commit(wallet: &WalletKey, version: u64, entries: Vec<Entry>) -> WalletCommit {
    let points = entries.iter().map(|e| e.deltas.points_available).sum();
    WalletCommit {
        expected_version: version,
        expected_epoch: 0,
        head: head_at(wallet, version + 1, points),
        entries,
        idempotency: None,
        reversals: Vec::new(),
        carried: Vec::new(),
        due_at: None,
    }
}

fn balance(version: u64) -> BalanceView {
    BalanceView {
        points_available: 100,
        points_pending: 0,
        points_held: 0,
        expiring_soon_points: 0,
        expiring_soon_at: None,
        stored_value: 0,
        bonus_value: 0,
        low_balance: false,
        version,
    }
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text).unwrap()
}

pub async fn a_new_wallet_commits_once(stores: Stores) {
    let w = new_wallet();
    assert_eq!(stores.wallets.head(&w).await.unwrap(), None);
    let opened = entry(EntryKind::Opened, 0);
    let first = commit(&w, 0, vec![opened.clone()]);
    assert_eq!(
        stores.wallets.commit(first.clone()).await.unwrap(),
        Applied::Yes
    );
    assert_eq!(stores.wallets.head(&w).await.unwrap(), Some(first.head));
    assert_eq!(
        stores.wallets.entry(&w, opened.id).await.unwrap(),
        Some(opened)
    );
    // Another "new wallet" commit finds the wallet there.
    let again = commit(&w, 0, vec![entry(EntryKind::Opened, 0)]);
    assert_eq!(
        stores.wallets.commit(again).await.unwrap(),
        Applied::Conflict
    );
    assert_eq!(stores.wallets.head(&w).await.unwrap().unwrap().version, 1);
}

/// Two regions (decision 0019): a head keeps the home epoch of its last write, a commit past
/// its write's deadline is refused before it is sent, leaving the wallet as it was, and the
/// wallet's first commit in a new home is a commit like any other.
pub async fn a_head_keeps_its_epoch_and_a_late_commit_writes_nothing(stores: Stores) {
    use loyalty_common::ErrorCode;
    use loyalty_common::write_scope::{WRITE_SCOPE, WriteScope};
    let w = new_wallet();
    let mut first = commit(&w, 0, vec![entry(EntryKind::Opened, 0)]);
    first.head.epoch = 7;
    assert_eq!(
        stores.wallets.commit(first.clone()).await.unwrap(),
        Applied::Yes
    );
    assert_eq!(stores.wallets.head(&w).await.unwrap().unwrap().epoch, 7);
    let late = WriteScope {
        epoch: Some(7),
        deadline: Some(tokio::time::Instant::now()),
    };
    let refused = WRITE_SCOPE
        .scope(
            late,
            stores
                .wallets
                .commit(commit(&w, 1, vec![entry(EntryKind::Earned, 5)])),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Unavailable, "{}", refused.message);
    assert_eq!(stores.wallets.head(&w).await.unwrap(), Some(first.head));
    // The wallet's first commit in a new home (on ScyllaDB, its Paxos round in every
    // datacenter) applies and conflicts as any other.
    let in_new_home = |entries| {
        let mut moved = commit(&w, 1, entries);
        moved.expected_epoch = 7;
        moved.head.epoch = 8;
        moved
    };
    let moved = in_new_home(vec![entry(EntryKind::Earned, 5)]);
    assert!(moved.first_in_new_home());
    assert_eq!(stores.wallets.commit(moved).await.unwrap(), Applied::Yes);
    let stale = in_new_home(vec![entry(EntryKind::Earned, 6)]);
    assert_eq!(
        stores.wallets.commit(stale).await.unwrap(),
        Applied::Conflict
    );
    let head = stores.wallets.head(&w).await.unwrap().unwrap();
    assert_eq!((head.version, head.epoch), (2, 8));
}

pub async fn a_stale_version_conflicts(stores: Stores) {
    let w = new_wallet();
    let wallets = &stores.wallets;
    assert_eq!(
        wallets
            .commit(commit(&w, 0, vec![entry(EntryKind::Opened, 0)]))
            .await
            .unwrap(),
        Applied::Yes
    );
    let winner = commit(&w, 1, vec![entry(EntryKind::Earned, 10)]);
    let loser_entry = entry(EntryKind::Earned, 20);
    let loser = commit(&w, 1, vec![loser_entry.clone()]);
    assert_eq!(wallets.commit(winner.clone()).await.unwrap(), Applied::Yes);
    assert_eq!(wallets.commit(loser).await.unwrap(), Applied::Conflict);
    // Nothing of the losing batch is written.
    assert_eq!(wallets.entry(&w, loser_entry.id).await.unwrap(), None);
    assert_eq!(wallets.head(&w).await.unwrap(), Some(winner.head));
    // A head whose version is not the expected one's next is refused too.
    let mut skipping = commit(&w, 2, vec![entry(EntryKind::Earned, 1)]);
    skipping.head.version = 5;
    assert_eq!(wallets.commit(skipping).await.unwrap(), Applied::Conflict);
    assert_eq!(
        wallets
            .commit(commit(&w, 2, vec![entry(EntryKind::Earned, 1)]))
            .await
            .unwrap(),
        Applied::Yes
    );
}

pub async fn an_idempotency_record_reads_back(stores: Stores) {
    let w = new_wallet();
    let wallets = &stores.wallets;
    let entries = vec![entry(EntryKind::Opened, 0), entry(EntryKind::Earned, 100)];
    let record = IdempotencyRecord {
        key: key("order-1"),
        fingerprint: "f00d".into(),
        outcome: WriteOutcome {
            entries: entries.clone(),
            balance: balance(1),
            hold: None,
        },
    };
    let mut first = commit(&w, 0, entries);
    first.idempotency = Some(record.clone());
    assert_eq!(wallets.commit(first).await.unwrap(), Applied::Yes);
    assert_eq!(
        wallets.idempotency(&w, &key("order-1")).await.unwrap(),
        Some(record)
    );
    assert_eq!(
        wallets.idempotency(&w, &key("order-2")).await.unwrap(),
        None
    );
    let elsewhere = wallet_of(&w.tenant, "bob");
    assert_eq!(
        wallets
            .idempotency(&elsewhere, &key("order-1"))
            .await
            .unwrap(),
        None
    );
}

/// A commit that carries an earlier commit's record (`crate::carry`) writes it, and its
/// entries, again: where they were missing, they read back.
pub async fn a_commit_writes_the_records_it_carries(stores: Stores) {
    let w = new_wallet();
    let wallets = &stores.wallets;
    assert_eq!(
        wallets
            .commit(commit(&w, 0, vec![entry(EntryKind::Opened, 0)]))
            .await
            .unwrap(),
        Applied::Yes
    );
    // As if written in the home's datacenter alone: not here.
    let earlier_entry = entry(EntryKind::Earned, 70);
    let carried = IdempotencyRecord {
        key: key("till-lost"),
        fingerprint: "beef".into(),
        outcome: WriteOutcome {
            entries: vec![earlier_entry.clone()],
            balance: balance(1),
            hold: None,
        },
    };
    let mut next = commit(&w, 1, vec![entry(EntryKind::Earned, 30)]);
    next.carried = vec![carried.clone()];
    assert_eq!(wallets.commit(next).await.unwrap(), Applied::Yes);
    assert_eq!(
        wallets.idempotency(&w, &key("till-lost")).await.unwrap(),
        Some(carried)
    );
    assert_eq!(
        wallets.entry(&w, earlier_entry.id).await.unwrap(),
        Some(earlier_entry)
    );
}

pub async fn an_entry_and_its_reversal_read_back(stores: Stores) {
    let w = new_wallet();
    let wallets = &stores.wallets;
    let earned = entry(EntryKind::Earned, 100);
    assert_eq!(
        wallets
            .commit(commit(&w, 0, vec![earned.clone()]))
            .await
            .unwrap(),
        Applied::Yes
    );
    assert_eq!(wallets.reversal(&w, earned.id).await.unwrap(), None);
    let mut reversed = entry(EntryKind::Reversed, -30);
    reversed.target = Some(earned.id);
    reversed.reason = Some("returned".into());
    let tracker = ReversalTracker {
        target: Some(earned.id),
        reversed: 30,
        reversed_bonus: 0,
    };
    let mut second = commit(&w, 1, vec![reversed.clone()]);
    second.reversals = vec![tracker.clone()];
    assert_eq!(wallets.commit(second).await.unwrap(), Applied::Yes);
    assert_eq!(
        wallets.entry(&w, earned.id).await.unwrap(),
        Some(earned.clone())
    );
    assert_eq!(
        wallets.entry(&w, reversed.id).await.unwrap(),
        Some(reversed)
    );
    assert_eq!(
        wallets.reversal(&w, earned.id).await.unwrap(),
        Some(tracker)
    );
    assert_eq!(wallets.entry(&w, next_id()).await.unwrap(), None);
}

pub async fn history_pages_newest_first(stores: Stores) {
    let w = new_wallet();
    let wallets = &stores.wallets;
    let mut written = Vec::new();
    for version in 0..7 {
        let e = entry(EntryKind::Earned, version as i64 + 1);
        written.push(e.clone());
        assert_eq!(
            wallets.commit(commit(&w, version, vec![e])).await.unwrap(),
            Applied::Yes
        );
    }
    let newest_first: Vec<Entry> = written.iter().rev().cloned().collect();
    let page1 = wallets.history(&w, None, 3).await.unwrap();
    assert_eq!(page1, newest_first[0..3]);
    let page2 = wallets.history(&w, Some(page1[2].id), 3).await.unwrap();
    assert_eq!(page2, newest_first[3..6]);
    let page3 = wallets.history(&w, Some(page2[2].id), 3).await.unwrap();
    assert_eq!(page3, newest_first[6..]);
    assert!(
        wallets
            .history(&w, Some(page3[0].id), 3)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(wallets.history(&w, None, 100).await.unwrap(), newest_first);
    let other = wallet_of(&w.tenant, "nobody");
    assert!(wallets.history(&other, None, 3).await.unwrap().is_empty());
}

fn rules_v(version: u64, points_per_unit: i64) -> RuleSet {
    RuleSet {
        version,
        points_per_unit,
        ..RuleSet::default()
    }
}

fn rules_key(key: &str, fingerprint: &str, version: u64) -> RulesIdempotency {
    RulesIdempotency {
        key: IdempotencyKey::parse(key).unwrap(),
        fingerprint: fingerprint.into(),
        version,
    }
}

pub async fn rules_are_versioned_with_idempotency_and_conflicts(stores: Stores) {
    let t = tenant();
    let rules = &stores.rules;
    assert_eq!(rules.current(&t).await.unwrap(), None);
    let v1 = rules_v(1, 2);
    let k1 = rules_key("r-1", "fp1", 1);
    assert_eq!(
        rules.put(&t, 0, v1.clone(), k1.clone()).await.unwrap(),
        Applied::Yes
    );
    assert_eq!(rules.current(&t).await.unwrap().as_deref(), Some(&v1));
    assert_eq!(rules.version(&t, 1).await.unwrap(), Some(v1.clone()));
    assert_eq!(rules.idempotency(&t, &k1.key).await.unwrap(), Some(k1));
    // A second first version, or a version that skips, loses.
    assert_eq!(
        rules
            .put(&t, 0, rules_v(1, 3), rules_key("r-2", "fp2", 1))
            .await
            .unwrap(),
        Applied::Conflict
    );
    assert_eq!(
        rules
            .put(&t, 1, rules_v(3, 3), rules_key("r-2", "fp2", 3))
            .await
            .unwrap(),
        Applied::Conflict
    );
    assert_eq!(rules.idempotency(&t, &key("r-2")).await.unwrap(), None);
    let v2 = rules_v(2, 5);
    assert_eq!(
        rules
            .put(&t, 1, v2.clone(), rules_key("r-3", "fp3", 2))
            .await
            .unwrap(),
        Applied::Yes
    );
    assert_eq!(rules.current(&t).await.unwrap().as_deref(), Some(&v2));
    assert_eq!(rules.version(&t, 1).await.unwrap(), Some(v1));
    assert_eq!(rules.version(&t, 3).await.unwrap(), None);
    // A stale writer's condition fails.
    assert_eq!(
        rules
            .put(&t, 1, rules_v(2, 9), rules_key("r-4", "fp4", 2))
            .await
            .unwrap(),
        Applied::Conflict
    );
    assert_eq!(rules.current(&tenant()).await.unwrap(), None);
}

fn transfer(tenant: &TenantId, id: &str, created_at: Timestamp) -> TransferRecord {
    TransferRecord {
        tenant: tenant.clone(),
        transfer_id: id.into(),
        from: MemberId::parse("alice").unwrap(),
        to: MemberId::parse("bob").unwrap(),
        points: 60,
        fingerprint: "fp".into(),
        state: TransferState::Started,
        revision: 1,
        created_at,
        debit: None,
        credit: None,
        failure: None,
    }
}

async fn unfinished_of(stores: &Stores, tenant: &TenantId) -> Vec<TransferRecord> {
    let all = stores.transfers.unfinished(10_000).await.unwrap();
    all.into_iter().filter(|r| &r.tenant == tenant).collect()
}

pub async fn transfers_move_by_revision_and_unfinished_ones_are_listed(stores: Stores) {
    let t = tenant();
    let transfers = &stores.transfers;
    let now = wall_clock();
    let older = transfer(&t, "tr-older", now.plus_secs(-120));
    let newer = transfer(&t, "tr-newer", now.plus_secs(-60));
    assert_eq!(transfers.get(&t, "tr-older").await.unwrap(), None);
    assert_eq!(transfers.put(newer.clone()).await.unwrap(), Applied::Yes);
    assert_eq!(transfers.put(older.clone()).await.unwrap(), Applied::Yes);
    // A second creation loses.
    assert_eq!(
        transfers.put(older.clone()).await.unwrap(),
        Applied::Conflict
    );
    assert_eq!(
        transfers.get(&t, "tr-older").await.unwrap(),
        Some(older.clone())
    );
    assert_eq!(
        unfinished_of(&stores, &t).await,
        [older.clone(), newer.clone()]
    );

    let debited = TransferRecord {
        state: TransferState::Debited,
        revision: 2,
        debit: Some(entry(EntryKind::TransferredOut, -60)),
        ..older.clone()
    };
    assert_eq!(transfers.put(debited.clone()).await.unwrap(), Applied::Yes);
    assert_eq!(
        transfers.put(debited.clone()).await.unwrap(),
        Applied::Conflict
    );
    let skipping = TransferRecord {
        revision: 4,
        ..debited.clone()
    };
    assert_eq!(transfers.put(skipping).await.unwrap(), Applied::Conflict);
    assert_eq!(
        transfers.get(&t, "tr-older").await.unwrap(),
        Some(debited.clone())
    );
    assert_eq!(
        unfinished_of(&stores, &t).await,
        [debited.clone(), newer.clone()]
    );

    let completed = TransferRecord {
        state: TransferState::Completed,
        revision: 3,
        credit: Some(entry(EntryKind::TransferredIn, 60)),
        ..debited
    };
    assert_eq!(
        transfers.put(completed.clone()).await.unwrap(),
        Applied::Yes
    );
    assert_eq!(
        transfers.get(&t, "tr-older").await.unwrap(),
        Some(completed)
    );
    assert_eq!(
        unfinished_of(&stores, &t).await,
        std::slice::from_ref(&newer)
    );
    let failed = TransferRecord {
        state: TransferState::Failed,
        revision: 2,
        failure: Some("insufficient_points".into()),
        ..newer
    };
    assert_eq!(transfers.put(failed).await.unwrap(), Applied::Yes);
    assert!(unfinished_of(&stores, &t).await.is_empty());
}

async fn due_of(stores: &Stores, tenant: &TenantId, until: Timestamp) -> Vec<DueWallet> {
    let all = stores.due.due(until, 10_000).await.unwrap();
    all.into_iter()
        .filter(|d| &d.wallet.tenant == tenant)
        .collect()
}

pub async fn due_wallets_are_listed_until_rescheduled(stores: Stores) {
    let t = tenant();
    let now = wall_clock();
    let (soon, later, moved) = (
        now.plus_secs(3_600),
        now.plus_secs(2 * 3_600),
        now.plus_secs(3 * 3_600),
    );
    let alice = wallet_of(&t, "alice");
    let bob = wallet_of(&t, "bob");
    for (w, at) in [(&alice, soon), (&bob, later)] {
        let mut first = commit(w, 0, vec![entry(EntryKind::Opened, 0)]);
        first.due_at = Some(at);
        assert_eq!(stores.wallets.commit(first).await.unwrap(), Applied::Yes);
    }
    assert!(due_of(&stores, &t, now).await.is_empty());
    let alice_due = DueWallet {
        at: soon,
        wallet: alice.clone(),
    };
    let bob_due = DueWallet {
        at: later,
        wallet: bob.clone(),
    };
    assert_eq!(
        due_of(&stores, &t, soon).await,
        std::slice::from_ref(&alice_due)
    );
    assert_eq!(
        due_of(&stores, &t, later).await,
        [alice_due.clone(), bob_due.clone()]
    );
    // Fired, and due again later.
    stores
        .due
        .reschedule(&alice_due, Some(moved))
        .await
        .unwrap();
    let alice_moved = DueWallet {
        at: moved,
        wallet: alice,
    };
    assert_eq!(
        due_of(&stores, &t, later).await,
        std::slice::from_ref(&bob_due)
    );
    assert_eq!(
        due_of(&stores, &t, moved).await,
        [bob_due.clone(), alice_moved.clone()]
    );
    // Rescheduled to the same time: still there. Fired with nothing more due: gone.
    stores.due.reschedule(&bob_due, Some(later)).await.unwrap();
    stores.due.reschedule(&alice_moved, None).await.unwrap();
    assert_eq!(
        due_of(&stores, &t, moved).await,
        std::slice::from_ref(&bob_due)
    );

    // Due days ago (a reminder whose window opened before the earn that set it): listed at
    // once, as due by now. (ScyllaDB lists it as due an hour ago rather than days: its
    // readers never go back further.)
    let carol = wallet_of(&t, "carol");
    let mut first = commit(&carol, 0, vec![entry(EntryKind::Opened, 0)]);
    first.due_at = Some(Timestamp(now.0 - 3 * 86_400_000));
    assert_eq!(stores.wallets.commit(first).await.unwrap(), Applied::Yes);
    let listed = due_of(&stores, &t, now).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].wallet, carol);
    assert!(listed[0].at <= now);
    stores.due.reschedule(&listed[0], None).await.unwrap();
    assert_eq!(due_of(&stores, &t, moved).await, [bob_due]);
}

/// The newest sequence number in the change log now.
async fn log_end(feed: &dyn ChangeFeed) -> u64 {
    let mut end = 0;
    loop {
        let changes = feed.changes_after(end, 1_000).await.unwrap();
        match changes.last() {
            Some(last) => end = last.seq,
            None => return end,
        }
    }
}

pub async fn commits_appear_in_the_change_feed_once_in_order(stores: Stores) {
    let feed = stores.feed.as_ref();
    let start = log_end(feed).await;
    let t = tenant();
    let (alice, bob) = (wallet_of(&t, "alice"), wallet_of(&t, "bob"));
    let mut expected = Vec::new();
    let plan = [
        (&alice, 0, vec![entry(EntryKind::Opened, 0)]),
        (&bob, 0, vec![entry(EntryKind::Opened, 0)]),
        (
            &alice,
            1,
            vec![entry(EntryKind::Earned, 10), entry(EntryKind::Expired, -3)],
        ),
        (&bob, 1, vec![entry(EntryKind::Earned, 20)]),
    ];
    // Bob's earn is written in a till's trace: its change record carries it.
    let traced = TraceContext {
        traceparent: format!("00-{:032x}-00f067aa0ba902b7-01", ulid::Ulid::new().0),
        tracestate: Some("acme=till-7".into()),
    };
    let traced_entry = plan[3].2[0].id;
    loyalty_events::trace::keep([traced_entry.to_string()], &traced);
    for (w, version, entries) in plan {
        let c = commit(w, version, entries.clone());
        assert_eq!(stores.wallets.commit(c).await.unwrap(), Applied::Yes);
        expected.extend(entries.into_iter().map(|e| (w.clone(), e)));
    }
    // A losing commit publishes nothing.
    let lost = commit(&alice, 0, vec![entry(EntryKind::Opened, 0)]);
    assert_eq!(
        stores.wallets.commit(lost).await.unwrap(),
        Applied::Conflict
    );

    // The relay hands changes on in passes, so they may take a moment to appear.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let changes = loop {
        let changes = feed.changes_after(start, 10_000).await.unwrap();
        let ours = changes.iter().filter(|c| c.wallet.tenant == t).count();
        if ours >= expected.len() || std::time::Instant::now() > deadline {
            break changes;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let seqs: Vec<u64> = changes.iter().map(|c| c.seq).collect();
    let gap_free: Vec<u64> = (start + 1..).take(changes.len()).collect();
    assert_eq!(seqs, gap_free);
    // Read again (the embedded store's second read is from disk, not its in-memory tail).
    let again = feed.changes_after(start, 10_000).await.unwrap();
    for read in [&changes, &again] {
        for change in read.iter().filter(|c| c.wallet.tenant == t) {
            let expected = (change.entry.id == traced_entry).then_some(&traced);
            assert_eq!(change.trace.as_ref(), expected, "{:?}", change.entry.kind);
        }
    }
    let ours: Vec<(WalletKey, Entry)> = changes
        .into_iter()
        .filter(|c| c.wallet.tenant == t)
        .map(|c| (c.wallet, c.entry))
        .collect();
    // Each wallet's changes in its commit order; every change once.
    for w in [&alice, &bob] {
        let of = |list: &[(WalletKey, Entry)]| -> Vec<Entry> {
            list.iter()
                .filter(|(k, _)| k == w)
                .map(|(_, e)| e.clone())
                .collect()
        };
        assert_eq!(of(&ours), of(&expected));
    }
    assert_eq!(ours.len(), expected.len());
    let last = start + seqs.len() as u64;
    // The log's end, for the publisher's backlog: at least what was read (other tests of the
    // run may have written more since).
    assert!(feed.log_end(start).await.unwrap() >= last);
    assert!(feed.log_end(last).await.unwrap() >= last);
    let after = feed.changes_after(last, 10_000).await.unwrap();
    assert!(after.iter().all(|c| c.wallet.tenant != t && c.seq > last));
}

pub async fn reader_positions_persist(stores: Stores) {
    let feed = &stores.feed;
    let reader = conformance::unique("publisher");
    assert_eq!(feed.position(&reader).await.unwrap(), 0);
    feed.save_position(&reader, 5).await.unwrap();
    assert_eq!(feed.position(&reader).await.unwrap(), 5);
    feed.save_position(&reader, 9).await.unwrap();
    assert_eq!(feed.position(&reader).await.unwrap(), 9);
    assert_eq!(
        feed.position(&conformance::unique("other")).await.unwrap(),
        0
    );
}

/// Declares the suite's tests for two store constructors, each an async fn in the calling
/// crate: `ledger_conformance!(crate::embedded, crate::scylla)`, the first returning [`Stores`], the
/// second `Option<Stores>` (None when no cluster is configured). Each behaviour runs on both.
#[macro_export]
macro_rules! ledger_conformance {
    ($embedded:path, $scylla:path) => {
        ::loyalty_scylla::conformance!(
            new_wallet_commit,
            $crate::store::conformance::a_new_wallet_commits_once,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            head_epoch,
            $crate::store::conformance::a_head_keeps_its_epoch_and_a_late_commit_writes_nothing,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            stale_version,
            $crate::store::conformance::a_stale_version_conflicts,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            idempotency_record,
            $crate::store::conformance::an_idempotency_record_reads_back,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            carried_records,
            $crate::store::conformance::a_commit_writes_the_records_it_carries,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            entry_and_reversal,
            $crate::store::conformance::an_entry_and_its_reversal_read_back,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            history_paging,
            $crate::store::conformance::history_pages_newest_first,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            rules_versions,
            $crate::store::conformance::rules_are_versioned_with_idempotency_and_conflicts,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            transfers,
            $crate::store::conformance::transfers_move_by_revision_and_unfinished_ones_are_listed,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            due_index,
            $crate::store::conformance::due_wallets_are_listed_until_rescheduled,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            change_feed,
            $crate::store::conformance::commits_appear_in_the_change_feed_once_in_order,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            reader_positions,
            $crate::store::conformance::reader_positions_persist,
            $embedded,
            $scylla
        );
    };
}
