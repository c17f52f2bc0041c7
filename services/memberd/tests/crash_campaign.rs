//! Crash safety of the campaign store: claims on a flash sale from many clients, `kill -9`
//! mid-load, a restart on the same data directory, then every acknowledged claim is there and
//! the sale's count of units taken equals the claims the store holds, acknowledged or not.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_proto::campaign::v1 as pb;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Addrs, http_post_with, start};

mod support;

const TENANT: &str = "crash";
const MEMBERS: usize = 20;
const WRITERS: usize = 32;
/// Acknowledged claims before the kill: the load is well under way, far from its end.
const BURST: usize = 300;
/// Claims each writer may try; the process dies long before.
const TRIES: usize = 2_000;

fn claim_id(w: usize, n: usize) -> String {
    format!("w{w}-n{n}")
}

/// The tenant, its members and a sale with stock and a member limit no load here reaches.
async fn set_up(addrs: &Addrs) {
    let token = addrs.token().await;
    let post = |path: String, key: String, body: String| {
        let headers = format!("Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n");
        async move {
            let (status, reply) = http_post_with(&addrs.http, &path, &headers, &body).await;
            assert_eq!(status, 200, "POST {path}: {reply}");
        }
    };
    let tenant = format!(r#"{{"id":"{TENANT}","name":"{TENANT}"}}"#);
    post("/v1/tenants".into(), "tenant".into(), tenant).await;
    for m in 0..MEMBERS {
        let profile = format!(r#"{{"personal":{{"phone":"138000{m:05}"}}}}"#);
        let path = format!("/v1/tenants/{TENANT}/members/m{m}/profile");
        post(path, format!("join-{m}"), profile).await;
    }
    let sale = serde_json::json!({"id": "S", "name": "Singles' day tea",
        "item": {"kind": "item", "sku": "TEA-1"}, "quotas": {"*": 1_000_000},
        "per_member_limit": 100_000, "starts_ms": 0, "hold_secs": 86_400});
    let path = format!("/v1/tenants/{TENANT}/flash-sales");
    post(path, "sale".into(), sale.to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_claim_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addrs) = start(dir.path()).await;
    set_up(&addrs).await;

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let acked = acked.clone();
        let mut campaign = addrs.campaign().await;
        writers.push(tokio::spawn(async move {
            for n in 0..TRIES {
                let claim = pb::ClaimRequest {
                    tenant_id: TENANT.into(),
                    sale_id: "S".into(),
                    claim_id: claim_id(w, n),
                    member_id: format!("m{}", (w + n) % MEMBERS),
                };
                match campaign.claim_flash_sale(claim).await {
                    Ok(_) => acked.lock().unwrap().push(claim_id(w, n)),
                    Err(_) => return n,
                }
            }
            TRIES
        }));
    }
    let running = || acked.lock().unwrap().len() >= BURST;
    support::wait_until("the claims are running", Duration::from_secs(60), running).await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.unwrap();
    let mut tried = Vec::new();
    for writer in writers {
        let stopped_at = tokio::time::timeout(Duration::from_secs(30), writer)
            .await
            .expect("writers stop")
            .unwrap();
        // The claim in flight when memberd died may or may not have been stored.
        tried.push((stopped_at + 1).min(TRIES));
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.len() >= BURST,
        "the load was running when memberd died"
    );

    let (_child, addrs) = start(dir.path()).await;
    let mut campaign = addrs.campaign().await;
    let claim_ref = |id: String| pb::ClaimRef {
        tenant_id: TENANT.into(),
        sale_id: "S".into(),
        claim_id: id,
    };
    for id in &acked {
        let claim = campaign.get_claim(claim_ref(id.clone())).await;
        let claim = claim.unwrap_or_else(|e| panic!("acknowledged claim {id} is present: {e}"));
        assert_eq!(claim.into_inner().state, "held");
    }
    let mut stored = 0u64;
    for (w, tried) in tried.into_iter().enumerate() {
        for n in 0..tried {
            match campaign.get_claim(claim_ref(claim_id(w, n))).await {
                Ok(_) => stored += 1,
                Err(e) => assert_eq!(e.code(), tonic::Code::NotFound, "{e}"),
            }
        }
    }
    let sale = campaign
        .get_flash_sale(pb::FlashSaleRef {
            tenant_id: TENANT.into(),
            sale_id: "S".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        sale.taken["*"], stored,
        "the units taken are the claims stored, no more, no fewer"
    );
    eprintln!(
        "campaign crash test: {} claims acknowledged before kill -9, all present; {stored} stored",
        acked.len()
    );
}
