//! What the drill checks once the load has stopped, from the wallets and the coupon
//! redemptions themselves: every acknowledged write is there (none lost), none is there
//! twice, and no balance is below zero.

use super::load::{Kind, Log, Outcome, Target};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// One wallet as read back: its entries (id, kind, reason or reference) and balance.
pub struct Wallet {
    pub entries: Vec<(String, String, Option<String>)>,
    pub available: i64,
}

/// Reads every member's history (all pages) and balance through `base`.
pub async fn read_wallets(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    targets: &[Target],
) -> HashMap<(String, String), Wallet> {
    let mut wallets = HashMap::new();
    for target in targets {
        for member in &target.members {
            let path = format!("{base}/v1/tenants/{}/members/{member}", target.tenant);
            let get = |url: String| async move {
                let answer = http.get(url).bearer_auth(token).send().await.unwrap();
                assert!(answer.status().is_success(), "{answer:?}");
                answer.json::<Value>().await.unwrap()
            };
            let mut entries = Vec::new();
            let mut cursor = String::new();
            loop {
                let page = get(format!("{path}/history?limit=200{cursor}")).await;
                for e in page["entries"].as_array().into_iter().flatten() {
                    let text = |f: &str| e[f].as_str().map(str::to_string);
                    let mark = text("reason").or_else(|| text("reference"));
                    entries.push((text("entry_id").unwrap(), text("kind").unwrap(), mark));
                }
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = format!("&cursor={next}"),
                    None => break,
                }
            }
            let balance = get(format!("{path}/balance")).await;
            let available = balance["points_available"].as_i64().unwrap();
            let key = (target.tenant.clone(), member.clone());
            wallets.insert(key, Wallet { entries, available });
        }
    }
    wallets
}

/// The state of every acknowledged coupon redemption (`redeemed`, ...), by its key.
pub async fn read_redemptions(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    log: &Log,
    targets: &[Target],
) -> HashMap<String, String> {
    let mut states = HashMap::new();
    let acked = log
        .sent
        .iter()
        .filter(|s| s.kind == Kind::Coupon && s.coupon.is_some() && s.outcome == Outcome::Acked);
    for sent in acked {
        let tenant = &targets[sent.tenant].tenant;
        let url = format!("{base}/v1/tenants/{tenant}/coupon-redemptions/{}", sent.key);
        let answer = http.get(url).bearer_auth(token).send().await.unwrap();
        let state = match answer.status().as_u16() {
            200 => answer.json::<Value>().await.unwrap()["state"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            404 => "missing".to_string(),
            status => panic!("reading redemption {}: HTTP {status}", sent.key),
        };
        states.insert(sent.key.clone(), state);
    }
    states
}

#[derive(Debug, Default)]
pub struct Findings {
    /// Acknowledged writes whose entries are missing from their wallets.
    pub lost: Vec<String>,
    /// Keys applied more than once: an earn or redemption whose mark is on two entries, or a
    /// member with more transfers out than transfer keys it sent.
    pub doubled: Vec<String>,
    pub overdrafts: Vec<String>,
}

pub fn check(
    log: &Log,
    targets: &[Target],
    wallets: &HashMap<(String, String), Wallet>,
    redemptions: &HashMap<String, String>,
) -> Findings {
    let mut findings = Findings::default();
    for sent in log.sent.iter().filter(|s| s.coupon.is_some()) {
        match &sent.outcome {
            Outcome::Acked if redemptions[&sent.key] != "redeemed" => findings.lost.push(format!(
                "{} (coupon redemption {})",
                sent.key, redemptions[&sent.key]
            )),
            // Every code is issued for one redemption and used once: a limit reached means
            // this key's first apply was not found by its retry, which applied it again.
            Outcome::Refused(code) if code == "COUPON_LIMIT_REACHED" => findings
                .doubled
                .push(format!("{} (coupon {code})", sent.key)),
            _ => {}
        }
    }
    for sent in &log.sent {
        let tenant = &targets[sent.tenant].tenant;
        if sent.outcome != Outcome::Acked {
            continue;
        }
        for (member, entry) in &sent.entries {
            let wallet = &wallets[&(tenant.clone(), member.clone())];
            if !wallet.entries.iter().any(|(id, _, _)| id == entry) {
                findings
                    .lost
                    .push(format!("{} ({member}: {entry})", sent.key));
            }
        }
    }
    let mut transfer_keys: HashMap<(String, String), usize> = HashMap::new();
    for sent in log.sent.iter().filter(|s| s.kind == Kind::Transfer) {
        let member = (targets[sent.tenant].tenant.clone(), sent.from.clone());
        *transfer_keys.entry(member).or_default() += 1;
    }
    for ((tenant, member), wallet) in wallets {
        let mut marks = HashSet::new();
        for (_, kind, mark) in &wallet.entries {
            let Some(mark) = mark.as_ref().filter(|m| m.starts_with("drill-")) else {
                continue;
            };
            // A redemption taken at once is one captured entry; an earn, one adjusted.
            if matches!(kind.as_str(), "adjusted" | "captured") && !marks.insert(mark.clone()) {
                findings.doubled.push(format!("{mark} ({kind} twice)"));
            }
        }
        let out = wallet
            .entries
            .iter()
            .filter(|(_, kind, _)| kind == "transferred_out")
            .count();
        let keys = transfer_keys
            .get(&(tenant.clone(), member.clone()))
            .copied()
            .unwrap_or(0);
        if out > keys {
            findings.doubled.push(format!(
                "{tenant}/{member}: {out} transfers out for {keys} keys"
            ));
        }
        if wallet.available < 0 {
            findings
                .overdrafts
                .push(format!("{tenant}/{member}: {}", wallet.available));
        }
    }
    findings
}

/// A span of the drill (since its start) in which `region` may answer `tenant`'s writes: it
/// was the tenant's home for part of it at least.
pub struct Home {
    pub tenant: usize,
    pub region: &'static str,
    pub from: Duration,
    pub to: Duration,
}

/// Acknowledged writes answered (`Answered-In-Region`) by a region that was not their
/// tenant's home at any time while they ran. The wallets cannot show a write run in the
/// wrong region (its conditional batch applies it once wherever it runs); this can.
pub fn answered_away(log: &Log, homes: &[Home]) -> Vec<String> {
    log.sent
        .iter()
        .filter(|s| s.outcome == Outcome::Acked)
        .filter(|s| {
            !homes.iter().any(|home| {
                home.tenant == s.tenant
                    && s.answered_in.as_deref() == Some(home.region)
                    && home.from <= s.answered_at
                    && s.sent_at <= home.to
            })
        })
        .map(|s| {
            format!(
                "{} answered in {:?} at {:.1} s",
                s.key,
                s.answered_in,
                s.answered_at.as_secs_f64()
            )
        })
        .collect()
}
