//! A burst of ledger writes against a running memberd, and what its events must show.

#![allow(dead_code)] // Each test binary compiles this module; not every one uses every helper.

use super::Ledger;
use loyalty_events::Envelope;
use loyalty_proto::ledger::v1 as pb;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub fn wallet(tenant: &str, member: &str) -> Option<pb::WalletRef> {
    Some(pb::WalletRef {
        tenant_id: tenant.into(),
        member_id: member.into(),
    })
}

pub fn earn(tenant: &str, member: &str, key: &str, total: i64) -> pb::EarnRequest {
    pb::EarnRequest {
        wallet: wallet(tenant, member),
        idempotency_key: key.into(),
        order_id: format!("order-{key}"),
        order_total: total,
        lines: vec![],
        occurred_at_ms: 0,
        tier_multiplier_bp: 0,
    }
}

pub async fn open_members(ledger: &mut Ledger, tenant: &str) {
    for m in 0..10 {
        let open = pb::OpenWalletRequest {
            wallet: wallet(tenant, &format!("m{m}")),
            idempotency_key: format!("open-{m}"),
        };
        ledger.open_wallet(open).await.unwrap();
    }
}

/// Earns from `writers` concurrent clients until the returned flag is set or a call fails;
/// collects the entry id of every acknowledged write.
pub fn drive(
    ledger: &Ledger,
    tenant: &'static str,
    writers: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Arc<Mutex<Vec<String>>>, Vec<tokio::task::JoinHandle<()>>) {
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let tasks = (0..writers)
        .map(|w| {
            let acked = acked.clone();
            let stop = stop.clone();
            let mut ledger = ledger.clone();
            tokio::spawn(async move {
                // Bounded: at most 5,000 writes per writer.
                for n in 0..5_000usize {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let member = format!("m{}", (w + n) % 10);
                    let request = earn(tenant, &member, &format!("w{w}-{n}"), 1_000);
                    match ledger.earn(request).await {
                        Ok(r) => acked
                            .lock()
                            .unwrap()
                            .push(r.into_inner().entries[0].entry_id.clone()),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    (acked, tasks)
}

/// Every entry id in the histories of the ten members `m0`..`m9` of `tenant`.
pub async fn all_entries(ledger: &mut Ledger, tenant: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    for m in 0..10 {
        let mut cursor = String::new();
        loop {
            let page = ledger
                .list_history(pb::ListHistoryRequest {
                    wallet: wallet(tenant, &format!("m{m}")),
                    cursor: cursor.clone(),
                    limit: 200,
                })
                .await
                .unwrap()
                .into_inner();
            ids.extend(page.entries.into_iter().map(|e| e.entry_id));
            if page.next_cursor.is_empty() {
                break;
            }
            cursor = page.next_cursor;
        }
    }
    ids
}

/// The stream holds each committed entry exactly once and nothing else.
pub fn assert_exactly_once(events: &[Envelope], committed: &HashSet<String>, acked: &[String]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for e in events {
        *seen.entry(e.id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "published more than once: {twice:?}");
    let published: HashSet<String> = seen.keys().map(|s| s.to_string()).collect();
    let missing: Vec<_> = committed.difference(&published).collect();
    let foreign: Vec<_> = published.difference(committed).collect();
    assert!(
        missing.is_empty(),
        "committed but not published: {missing:?}"
    );
    assert!(
        foreign.is_empty(),
        "published but not committed: {foreign:?}"
    );
    assert!(acked.iter().all(|id| committed.contains(id)));
}
