//! The outbox relay on the CQL cluster (`SCYLLA_NODES`), as two processes run it: two
//! ledger stores on one keyspace commit to many wallets at once while both read the change
//! log; the one holding the relay's lease stops mid-way (a process killed), and the other
//! takes the lease over once it lapses. The log then holds every committed entry exactly
//! once, numbered without a gap, each wallet's in commit order. And a hint written by a
//! writer whose clock is behind is found by the relay's next sweep.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_common::Timestamp;
use loyalty_common::ids::{EntryId, MemberId, TenantId};
use loyalty_ledger::model::{Deltas, Entry, EntryKind, WalletHead, WalletKey};
use loyalty_ledger::store::cql::ScyllaLedgerStore;
use loyalty_ledger::store::{Applied, ChangeFeed, WalletCommit, WalletRepository};
use loyalty_scylla::session::connect;
use loyalty_scylla::test_cluster::{migrated_keyspace, unique_prefix};
use scylla::value::CqlTimestamp;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WALLETS: usize = 12;
const COMMITS: u64 = 15;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Entry ids that grow, as the ledger's clock gives them.
fn entry(kind: EntryKind, points: i64) -> Entry {
    let n = NEXT_ID.fetch_add(1, Ordering::SeqCst);
    let id = EntryId(ulid::Ulid::from_parts(now_ms() as u64 + n, u128::from(n)));
    let deltas = Deltas {
        points_available: points,
        ..Deltas::default()
    };
    Entry::new(id, kind, Timestamp(now_ms()), deltas)
}

fn commit(wallet: &WalletKey, version: u64, entry: Entry) -> WalletCommit {
    let mut head = WalletHead::new(wallet.clone(), Timestamp(1_700_000_000_000));
    head.version = version + 1;
    head.balances.points_available = version as i64;
    WalletCommit {
        expected_version: version,
        expected_epoch: 0,
        head,
        entries: vec![entry],
        idempotency: None,
        reversals: Vec::new(),
        carried: Vec::new(),
        due_at: None,
    }
}

/// Commits `versions` of every wallet, each wallet's in turn and the wallets at once, through
/// `stores` in turn; adds the entry ids to `committed`.
async fn write(
    wallets: &[WalletKey],
    versions: std::ops::Range<u64>,
    stores: &[Arc<ScyllaLedgerStore>],
    committed: &mut BTreeMap<String, Vec<EntryId>>,
) {
    let writers: Vec<_> = wallets
        .iter()
        .enumerate()
        .map(|(i, wallet)| {
            let wallet = wallet.clone();
            let stores = stores.to_vec();
            let versions = versions.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for version in versions {
                    let store = &stores[(i + version as usize) % stores.len()];
                    let kind = if version == 0 {
                        EntryKind::Opened
                    } else {
                        EntryKind::Earned
                    };
                    let e = entry(kind, 1);
                    ids.push(e.id);
                    let applied = store.commit(commit(&wallet, version, e)).await.unwrap();
                    assert_eq!(applied, Applied::Yes);
                }
                (wallet.member.to_string(), ids)
            })
        })
        .collect();
    for w in writers {
        let (member, ids) = w.await.unwrap();
        committed.entry(member).or_default().extend(ids);
    }
}

/// Reads the log from its start as a publisher does, until it holds `until` entries of
/// `tenant`; their numbers, members and ids.
async fn read_all(
    store: &ScyllaLedgerStore,
    tenant: &str,
    until: usize,
) -> Vec<(u64, String, EntryId)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store.changes_after(after, 500).await.unwrap();
        for change in &page {
            assert_eq!(change.seq, after + 1, "the log is read without a gap");
            after = change.seq;
            if change.wallet.tenant.as_str() == tenant {
                seen.push((
                    change.seq,
                    change.wallet.member.to_string(),
                    change.entry.id,
                ));
            }
        }
        if seen.len() >= until {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {until} entries reached the log within 60 s",
            seen.len()
        );
        if page.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_one_stopping_hand_on_every_entry_exactly_once_in_order() {
    let Some((session, config)) =
        migrated_keyspace("relay", "ledger", loyalty_ledger::schema::MIGRATIONS).await
    else {
        return;
    };
    let keyspace = config.keyspace("ledger");
    // Two processes: each its own session and relay.
    let first = ScyllaLedgerStore::open(session, &keyspace).await.unwrap();
    let second = ScyllaLedgerStore::open(Arc::new(connect(&config).await.unwrap()), &keyspace)
        .await
        .unwrap();

    let tenant = TenantId::parse(unique_prefix("t").replace('_', "-")).unwrap();
    let wallets: Vec<WalletKey> = (0..WALLETS)
        .map(|m| WalletKey {
            tenant: tenant.clone(),
            member: MemberId::parse(format!("m{m}")).unwrap(),
        })
        .collect();

    // The first process reads the log meanwhile, as its publisher would, and so relays.
    let first_stops = Arc::new(AtomicBool::new(false));
    let first_reader = {
        let (store, stop) = (Arc::clone(&first), Arc::clone(&first_stops));
        tokio::spawn(async move {
            let mut after = 0;
            while !stop.load(Ordering::SeqCst) {
                after += store.changes_after(after, 100).await.unwrap().len() as u64;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            after
        })
    };

    // The first half of each wallet's commits through either process, then the first stops
    // (a process killed with the lease), and the rest go through the second.
    let mut committed: BTreeMap<String, Vec<EntryId>> = BTreeMap::new();
    let half = COMMITS / 2;
    let both = [Arc::clone(&first), Arc::clone(&second)];
    write(&wallets, 0..half, &both, &mut committed).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    first_stops.store(true, Ordering::SeqCst);
    let relayed_by_first = first_reader.await.unwrap();
    drop(both);
    drop(first);
    assert!(
        relayed_by_first > 0,
        "the first process relayed while it ran"
    );
    write(
        &wallets,
        half..COMMITS,
        &[Arc::clone(&second)],
        &mut committed,
    )
    .await;

    let total = WALLETS * COMMITS as usize;
    let started = Instant::now();
    let logged = read_all(&second, tenant.as_str(), total).await;
    eprintln!(
        "relay: {total} entries over {WALLETS} wallets, {relayed_by_first} handed on by the \
         first process; the second had the rest {:.1} s after the last write (its lease ask \
         and the first's lease lapsing)",
        started.elapsed().as_secs_f64()
    );

    let ids: HashSet<EntryId> = logged.iter().map(|(_, _, id)| *id).collect();
    assert_eq!(ids.len(), logged.len(), "no entry is in the log twice");
    assert_eq!(logged.len(), total, "every committed entry is in the log");
    for (member, ids) in &committed {
        let in_log: Vec<EntryId> = logged
            .iter()
            .filter(|(_, m, _)| m == member)
            .map(|(_, _, id)| *id)
            .collect();
        assert_eq!(&in_log, ids, "{member}'s entries in commit order");
    }
}

/// A hint written by a process whose clock is 8 s behind the relay's is older than the
/// recent hints a pass reads between sweeps: its commit is handed on by the next sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_hint_is_handed_on_by_the_next_sweep() {
    let Some((session, config)) =
        migrated_keyspace("relay_late", "ledger", loyalty_ledger::schema::MIGRATIONS).await
    else {
        return;
    };
    let keyspace = config.keyspace("ledger");
    // A relay reads no hint older than the minute it first started in: start it 10 s or more
    // into a minute, so that the late hint below falls within it.
    let into_minute = now_ms() % 60_000;
    if into_minute < 10_000 {
        tokio::time::sleep(Duration::from_millis((10_000 - into_minute) as u64)).await;
    }
    let store = ScyllaLedgerStore::open(Arc::clone(&session), &keyspace)
        .await
        .unwrap();
    // A first read: the relay's sweep, with nothing to hand on.
    assert!(store.changes_after(0, 10).await.unwrap().is_empty());

    let wallet = WalletKey {
        tenant: TenantId::parse("acme").unwrap(),
        member: MemberId::parse("late").unwrap(),
    };
    let opened = entry(EntryKind::Opened, 0);
    let applied = store.commit(commit(&wallet, 0, opened.clone())).await;
    assert_eq!(applied.unwrap(), Applied::Yes);
    // Its hint, moved 8 s back, as a writer whose clock is behind would have written it.
    let minute = |ms: i64| (ms / 60_000) as i32;
    let now = now_ms();
    let mut found = None;
    for bucket in [minute(now) - 1, minute(now)] {
        for shard in 0..16 {
            let rows = session
                .session
                .query_unpaged(
                    format!(
                        "SELECT at, position FROM {keyspace}.outbox_hints WHERE \
                         bucket_minute = ? AND shard = ? AND at > ? AND tenant = 'acme' \
                         AND member = 'late' ALLOW FILTERING"
                    ),
                    (bucket, shard, CqlTimestamp(0)),
                )
                .await
                .unwrap()
                .into_rows_result()
                .unwrap();
            for row in rows.rows::<(CqlTimestamp, i64)>().unwrap() {
                found = Some((bucket, shard, row.unwrap()));
            }
        }
    }
    let (bucket, shard, (at, position)) = found.expect("the commit's hint");
    let late = CqlTimestamp(at.0 - 8_000);
    for (cql, values) in [
        (
            "DELETE FROM {ks}.outbox_hints WHERE bucket_minute = ? AND shard = ? AND at = ? \
             AND tenant = 'acme' AND member = 'late' AND position = ?",
            (bucket, shard, at, position),
        ),
        (
            "INSERT INTO {ks}.outbox_hints (bucket_minute, shard, at, position, tenant, \
             member) VALUES (?, ?, ?, ?, 'acme', 'late')",
            (minute(late.0), shard, late, position),
        ),
    ] {
        session
            .session
            .query_unpaged(cql.replace("{ks}", &keyspace), values)
            .await
            .unwrap();
    }

    let started = Instant::now();
    let logged = read_all(&store, "acme", 1).await;
    assert_eq!(logged[0].2, opened.id);
    eprintln!(
        "relay: a hint 8 s late handed on after {:.1} s (by the next sweep)",
        started.elapsed().as_secs_f64()
    );
}
