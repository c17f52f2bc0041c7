use super::*;
use crate::model::WalletKey;
use crate::rules::ExpiryPolicy;
use loyalty_common::ManualClock;
use loyalty_common::ids::{MemberId, TenantId};

fn head() -> WalletHead {
    let wallet = WalletKey {
        tenant: TenantId::parse("t").unwrap(),
        member: MemberId::parse("m").unwrap(),
    };
    WalletHead::new(wallet, Timestamp(0))
}

fn order(total: i64) -> Order {
    Order {
        order_id: "o".into(),
        total,
        lines: vec![],
        occurred_at: None,
    }
}

#[test]
fn lots_with_one_expiry_merge_and_are_spent_earliest_first() {
    let clock = ManualClock::new(Timestamp(0));
    let rules = RuleSet {
        expiry: ExpiryPolicy::RollingMonths { months: 1 },
        ..RuleSet::default()
    };
    let mut tx = WalletTx::new(head(), clock.as_ref());
    tx.earn(&order(1000), &rules).unwrap();
    tx.earn(&order(500), &rules).unwrap();
    assert_eq!(tx.head.lots.len(), 1, "same expiry day, one lot");
    clock.advance_secs(40 * 86_400);
    let mut tx = WalletTx::new(tx.head, clock.as_ref());
    tx.earn(&order(200), &rules).unwrap();
    assert_eq!(tx.head.lots.len(), 2);
    let hold = tx.hold(12, "r", 60).unwrap();
    assert_eq!(tx.head.lots[0].points, 3, "the earlier lot pays first");
    let taken = tx.take_hold(hold.hold_id, true).unwrap();
    tx.release_hold(taken, EntryKind::Voided);
    assert_eq!(
        tx.head.lots[0].points, 15,
        "a void restores the original expiry"
    );
}

#[test]
fn debt_is_repaid_before_new_lots_open() {
    let clock = ManualClock::new(Timestamp(0));
    let rules = RuleSet::default();
    let mut tx = WalletTx::new(head(), clock.as_ref());
    tx.earn(&order(1000), &rules).unwrap();
    let earn = tx.entries[0].clone();
    tx.adjust(-10, "spent", &rules).unwrap();
    tx.reverse_earn(&earn, 10, "return");
    assert_eq!((tx.head.debt, tx.head.balances.points_available), (10, -10));
    tx.earn(&order(1500), &rules).unwrap();
    assert_eq!((tx.head.debt, tx.head.balances.points_available), (0, 5));
    assert_eq!(tx.head.lots.iter().map(|l| l.points).sum::<i64>(), 5);
}

#[test]
fn a_failed_operation_changes_nothing() {
    let clock = ManualClock::new(Timestamp(0));
    let mut tx = WalletTx::new(head(), clock.as_ref());
    let before = tx.head.clone();
    assert_eq!(
        tx.hold(1, "r", 60).unwrap_err().code,
        ErrorCode::InsufficientPoints
    );
    assert_eq!(
        tx.spend(1, "r").unwrap_err().code,
        ErrorCode::InsufficientStoredValue
    );
    assert_eq!(tx.head, before);
    assert!(tx.entries.is_empty());
}
