//! The ledger's background work in two regions (decision 0019): housekeeping and the recovery
//! of transfers cut short run for a tenant only in its home, only while that region holds its
//! lease, and under the epoch of the tenant's home, which a wallet a newer home has written
//! refuses.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

mod common;

use common::{Harness, ports, tenant};
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::IdempotencyKey;
use loyalty_common::write_scope::{WRITE_SCOPE, WriteScope};
use loyalty_ledger::Ledger;
use loyalty_ledger::model::{EntryKind, WalletKey};
use loyalty_ledger::rules::RuleSet;
use loyalty_region::background::SharedView;
use loyalty_region::lease::TTL;
use loyalty_region::{Epoch, Home, Region};
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn region(name: &str) -> Region {
    Region::parse(name).unwrap()
}

/// Region `me`'s view (the other is `peer`): acme homed in `home` at `epoch`, moving or not,
/// and this region's lease held or not.
fn view(me: &str, peer: &str, home: &str, epoch: u64, moving: bool, held: bool) -> SharedView {
    let view = SharedView::new(region(me), region(peer));
    let homes = vec![(
        tenant().as_str().to_string(),
        Home {
            region: region(home),
            epoch: Epoch(epoch),
            moving,
        },
    )];
    let sent = view.now();
    view.update(|v| {
        v.homes_read(Epoch(epoch), homes);
        v.own_row_read(sent, held.then_some(TTL), Epoch(epoch));
    });
    view
}

/// A ledger on the harness's store and clock that sees the regions as `view` says.
fn in_region(h: &Harness, view: SharedView) -> Arc<Ledger> {
    Ledger::in_regions(ports(&h.store), h.clock.clone(), Some(view))
}

/// A wallet whose tenant keeps earned points pending for 7 days.
async fn locked_wallet(h: &Harness) -> WalletKey {
    let w = h.wallet("m1").await;
    h.rules(RuleSet {
        lock_days: 7,
        ..RuleSet::default()
    })
    .await;
    w
}

/// A wallet with 300 points pending for 7 days, and the 7 days passed: due to activate.
async fn pending_due(h: &Harness) -> WalletKey {
    let w = locked_wallet(h).await;
    h.earn(&w, 30_000).await;
    h.clock.advance_secs(7 * 86_400);
    w
}

/// The points the wallet's entries show activated (a balance read counts due points as
/// available already, written or not).
async fn activated(h: &Harness, w: &WalletKey) -> i64 {
    let (entries, _) = h.ledger.history(w, None, 1_000).await.unwrap();
    entries
        .iter()
        .filter(|e| e.kind == EntryKind::PendingActivated)
        .map(|e| e.deltas.points_available)
        .sum()
}

#[tokio::test]
async fn housekeeping_runs_only_in_the_tenants_home_while_it_holds_its_lease() {
    let h = Harness::new();
    let w = pending_due(&h).await;
    // Homed in a: b passes it by; a without its lease, or with acme on the move, waits.
    for (who, ledger) in [
        (
            "the other region",
            in_region(&h, view("b", "a", "a", 3, false, true)),
        ),
        (
            "its home, fenced",
            in_region(&h, view("a", "b", "a", 3, false, false)),
        ),
        (
            "its home, moving",
            in_region(&h, view("a", "b", "a", 3, true, true)),
        ),
    ] {
        assert_eq!(ledger.run_due(100).await.unwrap(), 0, "{who}");
        assert_eq!(activated(&h, &w).await, 0, "{who} activated the points");
    }
    let home = in_region(&h, view("a", "b", "a", 3, false, true));
    assert_eq!(home.run_due(100).await.unwrap(), 1);
    assert_eq!(activated(&h, &w).await, 300);
    h.assert_entries_sum_to_balance(&w).await;
}

#[tokio::test]
async fn a_transfer_cut_short_is_driven_on_only_in_its_tenants_home() {
    let h = Harness::new();
    let (from, to) = (h.wallet("alice").await, h.wallet("bob").await);
    h.earn(&from, 10_000).await;
    h.ledger
        .faults
        .stop_after_transfer_debit
        .store(true, Ordering::SeqCst);
    let key = IdempotencyKey::parse("gift-1").unwrap();
    let acme = tenant();
    let cut = h.ledger.transfer(&acme, &from.member, &to.member, &key, 60);
    assert_eq!(cut.await.unwrap_err().code, ErrorCode::Unavailable);

    let elsewhere = in_region(&h, view("b", "a", "a", 3, false, true));
    assert_eq!(elsewhere.recover_transfers(0, 10).await.unwrap(), 0);
    assert_eq!(h.ledger.balance(&to).await.unwrap().points_available, 0);
    let home = in_region(&h, view("a", "b", "a", 3, false, true));
    assert_eq!(home.recover_transfers(0, 10).await.unwrap(), 1);
    assert_eq!(h.ledger.balance(&from).await.unwrap().points_available, 40);
    assert_eq!(h.ledger.balance(&to).await.unwrap().points_available, 60);
    h.assert_entries_sum_to_balance(&from).await;
    h.assert_entries_sum_to_balance(&to).await;
}

#[tokio::test]
async fn housekeeping_under_an_older_home_epoch_than_the_wallets_is_refused() {
    let h = Harness::new();
    let w = locked_wallet(&h).await;
    // The new home (epoch 5) writes the wallet; once its points are due, a region still
    // seeing epoch 4 does nothing to it (the wallet refuses the write), and they stay due
    // for the home.
    let scope = WriteScope {
        epoch: Some(5),
        deadline: None,
    };
    WRITE_SCOPE.scope(scope, h.earn(&w, 30_000)).await;
    h.clock.advance_secs(7 * 86_400);
    let stale = in_region(&h, view("a", "b", "a", 4, false, true));
    assert_eq!(stale.run_due(100).await.unwrap(), 0);
    assert_eq!(activated(&h, &w).await, 0);
    let current = in_region(&h, view("a", "b", "a", 5, false, true));
    assert_eq!(current.run_due(100).await.unwrap(), 1);
    assert_eq!(activated(&h, &w).await, 300);
    h.assert_entries_sum_to_balance(&w).await;
}
