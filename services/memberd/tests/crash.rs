//! Crash safety: drive writes at the real `memberd` binary, `kill -9` it mid-load, restart it on
//! the same data directory, and check that every acknowledged write is there and that every
//! balance still equals the sum of its entries.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_proto::ledger::v1 as pb;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Addrs, Ledger, start_with};

mod support;

const MEMBERS: usize = 20;
const WRITERS: usize = 32;
/// Acknowledged writes before the kill: the load is well under way, far from its end.
const BURST: usize = 300;

struct Acked {
    request: pb::EarnRequest,
    entry_id: String,
}

async fn client(addr: &Addrs) -> Ledger {
    addr.ledger().await
}

fn wallet(i: usize) -> Option<pb::WalletRef> {
    Some(pb::WalletRef {
        tenant_id: "crash".into(),
        member_id: format!("member-{i}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9() {
    kill_9_under_load(&[], Duration::from_secs(30), BURST).await;
}

/// The embedded store's commit log in 1 MiB segments, checkpointed every second: over longer
/// bursts the kills land among segment switches, segment preparation and checkpoints (fjall
/// synced, segments deleted) as well as plain appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9_across_log_segments_and_checkpoints() {
    let env = [
        ("MEMBERD_STORE__LOG_SEGMENT_MIB", "1"),
        ("MEMBERD_STORE__CHECKPOINT_SECS", "1"),
    ];
    for burst in [2_500, 6_000] {
        kill_9_under_load(&env, Duration::from_secs(60), burst).await;
    }
}

/// The same on the CQL cluster (`storage = "scylla"`): an acknowledged write is in the
/// cluster at `LOCAL_QUORUM` before the reply, whatever becomes of memberd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9_on_cql() {
    let Some(cql) = support::cql::keyspaces("crash").await else {
        return;
    };
    kill_9_under_load(&cql.env(), Duration::from_secs(60), BURST).await;
}

/// The commit log's crash points (`LOYALTY_LEDGER_CRASH_AT`, in the tests' build of memberd):
/// memberd kills itself with SIGKILL at the named moment, under load, in 1 MiB segments
/// checkpointed every second, and must come back with every acknowledged write. A point is
/// taken at a later hit where its first could come before the load is under way.
macro_rules! crash_point_tests {
    ($($test:ident: $point:literal, $tear:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let env = [
                ("MEMBERD_STORE__LOG_SEGMENT_MIB", "1"),
                ("MEMBERD_STORE__CHECKPOINT_SECS", "1"),
            ];
            let death = Death::AtCrashPoint { point: $point, tear_final_frame: $tear };
            survive(&env, Duration::from_secs(90), death).await;
        }
    )*};
}

crash_point_tests! {
    killed_as_a_checkpoint_starts: "checkpoint-starting@4", false;
    killed_after_a_checkpoint_synced_the_store: "checkpoint-synced@4", false;
    killed_while_a_checkpoint_deletes_segments: "checkpoint-trimming@1", false;
    killed_with_the_next_segment_prepared: "segment-prepared@1", false;
    killed_with_the_next_segment_named_but_not_synced: "segment-renamed@1", false;
    killed_right_after_a_segment_switch: "segment-switched@2", false;
    killed_with_a_frame_written_but_not_synced: "frame-written@1500", false;
    a_torn_final_frame_is_dropped_at_restart: "frame-written@1500", true;
}

/// How memberd dies in the middle of the load.
enum Death {
    /// `kill -9` from outside once this many writes are acknowledged.
    KilledAfter(usize),
    /// It kills itself at this crash point; then, if asked, the test zeroes the end of the
    /// newest log segment's last frame, as a power cut would leave a write still in flight.
    AtCrashPoint {
        point: &'static str,
        tear_final_frame: bool,
    },
}

/// Drives earns from many clients, kills memberd (`kill -9`) once `burst` are acknowledged
/// (which must happen `within`), restarts it with the same data directory and settings, and
/// checks every acknowledged write.
async fn kill_9_under_load(env: &[(&str, &str)], within: Duration, burst: usize) {
    survive(env, within, Death::KilledAfter(burst)).await;
}

/// Drives earns from many clients until memberd dies as `death` says (which must happen
/// `within`), restarts it on the same data directory and settings, and checks every
/// acknowledged write.
async fn survive(env: &[(&str, &str)], within: Duration, death: Death) {
    let dir = tempfile::tempdir().unwrap();
    let mut first_env = env.to_vec();
    if let Death::AtCrashPoint { point, .. } = &death {
        first_env.push(("LOYALTY_LEDGER_CRASH_AT", point));
    }
    let (mut child, addr) = start_with(dir.path(), &first_env).await;
    // Every client logs in first: from the first wallet on, the ledger's frames count toward
    // the crash points, and the load must be under way when one is reached.
    let mut clients = Vec::new();
    for _ in 0..WRITERS {
        clients.push(client(&addr).await);
    }
    let mut ledger = client(&addr).await;
    for i in 0..MEMBERS {
        let open = pb::OpenWalletRequest {
            wallet: wallet(i),
            idempotency_key: format!("open-{i}"),
        };
        ledger.open_wallet(open).await.unwrap();
    }

    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let mut writers = Vec::new();
    for (w, mut ledger) in clients.into_iter().enumerate() {
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            // Bounded: at most 10,000 writes per writer, and the process dies long before.
            for n in 0..10_000usize {
                let request = pb::EarnRequest {
                    wallet: wallet((w + n) % MEMBERS),
                    idempotency_key: format!("w{w}-n{n}"),
                    order_id: format!("order-{w}-{n}"),
                    order_total: 100 + (n as i64 % 900),
                    lines: vec![],
                    occurred_at_ms: 0,
                    tier_multiplier_bp: 0,
                };
                match ledger.earn(request.clone()).await {
                    Ok(reply) => {
                        let entry_id = reply.into_inner().entries[0].entry_id.clone();
                        acked.lock().unwrap().push(Acked { request, entry_id });
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    let mut torn = None;
    match death {
        Death::KilledAfter(burst) => {
            // Once the load is well under way, kill -9 in the middle of it.
            let running = || acked.lock().unwrap().len() >= burst;
            support::wait_until("the load is running", within, running).await;
            child.start_kill().expect("SIGKILL");
            child.wait().await.unwrap();
        }
        Death::AtCrashPoint {
            point,
            tear_final_frame,
        } => {
            let status = tokio::time::timeout(within, child.wait())
                .await
                .unwrap_or_else(|_| panic!("memberd reaches crash point {point} under load"))
                .unwrap();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.signal(),
                Some(9),
                "memberd died at {point}: {status}"
            );
            if tear_final_frame {
                torn = Some(tear_final_frame_of_newest_segment(dir.path()));
            }
        }
    }
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(30), writer)
            .await
            .expect("writers stop")
            .unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.len() > 100,
        "the load was running when memberd died ({} acked)",
        acked.len()
    );

    let (_child, addr) = start_with(dir.path(), env).await;
    let mut ledger = client(&addr).await;
    for write in &acked {
        let replay = ledger
            .earn(write.request.clone())
            .await
            .expect("acknowledged write replays")
            .into_inner();
        assert!(
            replay.replayed,
            "acknowledged write {} is present",
            write.request.idempotency_key
        );
        assert_eq!(replay.entries[0].entry_id, write.entry_id);
    }
    let mut present = 0;
    for i in 0..MEMBERS {
        let mut sum = 0;
        let mut ids = std::collections::HashSet::new();
        let mut cursor = String::new();
        loop {
            let page = ledger
                .list_history(pb::ListHistoryRequest {
                    wallet: wallet(i),
                    cursor: cursor.clone(),
                    limit: 200,
                })
                .await
                .unwrap()
                .into_inner();
            for e in &page.entries {
                sum += e.deltas.as_ref().map_or(0, |d| d.points_available);
                ids.insert(e.entry_id.clone());
            }
            if page.next_cursor.is_empty() {
                break;
            }
            cursor = page.next_cursor;
        }
        let balance = ledger
            .get_balance(wallet(i).unwrap())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            sum, balance.points_available,
            "member-{i}: entries sum to the balance"
        );
        let member = format!("member-{i}");
        for write in acked.iter().filter(|a| {
            a.request
                .wallet
                .as_ref()
                .is_some_and(|w| w.member_id == member)
        }) {
            assert!(
                ids.contains(&write.entry_id),
                "acknowledged entry {} is in the history",
                write.entry_id
            );
            present += 1;
        }
    }
    assert_eq!(present, acked.len());
    if let Some((segment, end)) = torn {
        // Recovery zeroed the torn frame (and wrote nothing after it: replays append nothing).
        let bytes = std::fs::read(&segment).unwrap();
        assert!(
            bytes[end - 32..end].iter().all(|b| *b == 0),
            "the torn final frame of {} was dropped at restart",
            segment.display()
        );
    }
    eprintln!(
        "crash test: {} acknowledged writes before kill -9, all present after restart",
        acked.len()
    );
}

/// Zeroes the last 16 bytes of the newest commit log segment's last frame (its payload's end:
/// every frame's payload is longer), so it fails its checksum as a torn write does. Returns the
/// segment and where its last frame ended.
fn tear_final_frame_of_newest_segment(data_dir: &std::path::Path) -> (std::path::PathBuf, usize) {
    let log_dir = find_dir(data_dir, "ledger-log").expect("the ledger's commit log directory");
    let newest = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max()
        .expect("a log segment");
    let mut bytes = std::fs::read(&newest).unwrap();
    let end = bytes
        .iter()
        .rposition(|b| *b != 0)
        .expect("a frame in the newest segment")
        + 1;
    bytes[end - 16..end].fill(0);
    std::fs::write(&newest, bytes).unwrap();
    (newest, end)
}

fn find_dir(under: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(under).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == name) {
                return Some(path);
            }
            if let Some(found) = find_dir(&path, name) {
                return Some(found);
            }
        }
    }
    None
}
