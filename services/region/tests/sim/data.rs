//! Each region's datacenter in the simulation: wallets as the ledger keeps them. A commit is
//! one conditional write of the wallet's head (its balance, the keys of its newest commits,
//! and the keys of those not known to be in both datacenters), the commit's idempotency
//! record and the records it carries; replication copies those rows, so the other
//! datacenter's head is the home's as of the last commit it received. Nothing else copies
//! rows between the datacenters: a datacenter that comes back is rebuilt from the other,
//! never repaired into it (decision 0019).

use std::collections::{BTreeMap, VecDeque};

/// How many of its newest commits' keys a wallet's head carries: a commit whose other-region
/// acknowledgement was lost is still known there by its key, through any later commit's head.
pub const RECENT: usize = 16;

/// What a write answered: applied (the balance after), or refused for want of points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Applied(i64),
    Insufficient,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    pub balance: i64,
    /// Incremented by every commit: which of two heads is newer.
    pub version: u64,
    /// The homes' epoch of the last commit.
    pub epoch: u64,
    /// Every applied commit's key, in order: what the balance is made of (two of one key
    /// would be a double apply).
    pub effects: Vec<String>,
    pub recent: VecDeque<(String, Answer)>,
    /// The keys of the commits not known to be in both datacenters, whose records the next
    /// commit carries (the ledger's `carry.rs`).
    pub unconfirmed: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wallet {
    pub head: Head,
    /// The idempotency records, one row per key.
    pub records: BTreeMap<String, Answer>,
}

/// A Paxos round under `SERIAL` on `wallet`, as the ledger runs a wallet's first commit in a
/// new home (`ledger_handover_writes`): the newest commit either datacenter holds, and its
/// record, is completed in the other.
pub fn complete_newest(datacenters: &mut [Datacenter; 2], wallet: &WalletKey) {
    let version = |dc: &Datacenter| dc.wallets.get(wallet).map_or(0, |w| w.head.version);
    let newer = usize::from(version(&datacenters[1]) > version(&datacenters[0]));
    let Some(source) = datacenters[newer].wallets.get(wallet).cloned() else {
        return;
    };
    let target = datacenters[1 - newer]
        .wallets
        .entry(wallet.clone())
        .or_default();
    target.head = source.head;
    target.records.extend(source.records);
}

/// A wallet's address: tenant and member.
pub type WalletKey = (String, u8);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Datacenter {
    pub wallets: BTreeMap<WalletKey, Wallet>,
}

impl Datacenter {
    /// The answer `key`'s record here holds: what a replay answers.
    pub fn record(&self, wallet: &WalletKey, key: &str) -> Option<Answer> {
        self.wallets.get(wallet)?.records.get(key).copied()
    }

    /// Whether the wallet's head here remembers a write with `key`: applied, even where its
    /// record has not arrived.
    pub fn remembers(&self, wallet: &WalletKey, key: &str) -> bool {
        let w = self.wallets.get(wallet);
        w.is_some_and(|w| w.head.recent.iter().any(|(k, _)| k == key))
    }

    /// The answer held for `key`: its record, or the head's memory of it (for the checks).
    pub fn recorded(&self, wallet: &WalletKey, key: &str) -> Option<Answer> {
        let w = self.wallets.get(wallet)?;
        w.records.get(key).copied().or_else(|| {
            w.head
                .recent
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, answer)| *answer)
        })
    }

    /// Runs a write here under the homes' `epoch`, as its home's conditional write does:
    /// refused if it would overdraw.
    pub fn apply(&mut self, wallet: &WalletKey, key: &str, delta: i64, epoch: u64) -> Answer {
        let w = self.wallets.entry(wallet.clone()).or_default();
        w.head.version += 1;
        w.head.epoch = epoch;
        let answer = if w.head.balance + delta < 0 {
            Answer::Insufficient
        } else {
            w.head.balance += delta;
            w.head.effects.push(key.to_string());
            Answer::Applied(w.head.balance)
        };
        w.records.insert(key.to_string(), answer);
        w.head.recent.push_back((key.to_string(), answer));
        if w.head.recent.len() > RECENT {
            w.head.recent.pop_front();
        }
        answer
    }

    /// Copies a commit's rows from `home`: the wallet's head and the records of `keys` (its
    /// own, and those it carried).
    pub fn replicate(&mut self, home: &Datacenter, wallet: &WalletKey, keys: &[String]) {
        let Some(source) = home.wallets.get(wallet) else {
            return;
        };
        let w = self.wallets.entry(wallet.clone()).or_default();
        w.head = source.head.clone();
        for key in keys {
            if let Some(answer) = source.records.get(key) {
                w.records.insert(key.clone(), *answer);
            }
        }
    }

    /// The epoch of `wallet`'s last commit here (0 for none).
    pub fn epoch_of(&self, wallet: &WalletKey) -> u64 {
        self.wallets.get(wallet).map_or(0, |w| w.head.epoch)
    }

    pub fn lowest_balance(&self) -> Option<(&WalletKey, i64)> {
        self.wallets
            .iter()
            .map(|(k, w)| (k, w.head.balance))
            .min_by_key(|(_, b)| *b)
    }
}
