//! What the drill checks once the load has stopped, from the wallets themselves: every
//! acknowledged write is there (none lost), none is there twice, and no balance is below
//! zero.

use super::load::{Kind, Log, Outcome, Target};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

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
) -> Findings {
    let mut findings = Findings::default();
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
