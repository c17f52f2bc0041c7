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
        tier_multiplier_bp: None,
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

fn reminders<'a>(tx: &'a WalletTx<'_>) -> Vec<&'a Entry> {
    tx.entries
        .iter()
        .filter(|e| e.kind == EntryKind::ExpiringSoon)
        .collect()
}

#[test]
fn each_lot_is_reminded_once_when_it_enters_the_window() {
    let clock = ManualClock::new(Timestamp(0));
    let rules = RuleSet {
        expiry: ExpiryPolicy::RollingMonths { months: 2 },
        ..RuleSet::default()
    };
    let mut tx = WalletTx::new(head(), clock.as_ref());
    tx.earn(&order(1000), &rules).unwrap();
    let first_expiry = tx.head.lots[0].expires_at.unwrap();
    tx.housekeeping(30);
    assert!(reminders(&tx).is_empty(), "two months out: not yet");
    let due = tx.head.next_due(30).unwrap();
    assert_eq!(
        due,
        first_expiry.plus_days(-30),
        "due when the window opens"
    );
    assert_eq!(
        tx.head.next_due(0),
        Some(first_expiry),
        "no window, no reminder"
    );

    clock.set(due);
    let mut tx = WalletTx::new(tx.head, clock.as_ref());
    tx.earn(&order(700), &rules).unwrap(); // a later lot, outside the window
    tx.housekeeping(30);
    let notes = reminders(&tx);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].deltas, Deltas::default(), "a notice moves nothing");
    assert_eq!(
        notes[0].lots,
        [Lot {
            expires_at: Some(first_expiry),
            points: 10
        }]
    );
    assert!(
        notes[0]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("10 points expire at ")
    );
    assert_eq!(tx.head.reminded, [first_expiry]);

    // Again at once, and after more points join the reminded lot: nothing new.
    let mut tx = WalletTx::new(tx.head, clock.as_ref());
    tx.housekeeping(30);
    tx.release_hold(
        Hold {
            hold_id: loyalty_common::ids::HoldId(ulid::Ulid::from_parts(1, 1)),
            points: 5,
            taken: vec![Lot {
                expires_at: Some(first_expiry),
                points: 5,
            }],
            expires_at: Timestamp(i64::MAX),
            reference: String::new(),
        },
        EntryKind::Voided,
    );
    tx.housekeeping(30);
    assert!(reminders(&tx).is_empty());
    let second = tx.head.next_due(30).unwrap();
    assert!(second > due, "the next reminder is for the later lot");
}

#[test]
fn lots_due_together_share_one_reminder_and_expired_lots_get_none() {
    let clock = ManualClock::new(Timestamp(0));
    let rules = RuleSet {
        expiry: ExpiryPolicy::RollingMonths { months: 1 },
        ..RuleSet::default()
    };
    let mut tx = WalletTx::new(head(), clock.as_ref());
    tx.earn(&order(100), &rules).unwrap();
    clock.advance_secs(86_400);
    let mut tx = WalletTx::new(tx.head, clock.as_ref());
    tx.earn(&order(200), &rules).unwrap();
    clock.advance_secs(10 * 86_400);
    let mut tx = WalletTx::new(tx.head, clock.as_ref());
    tx.housekeeping(30);
    let notes = reminders(&tx);
    assert_eq!(notes.len(), 1, "one notice for both lots");
    assert_eq!(notes[0].lots.iter().map(|l| l.points).sum::<i64>(), 3);
    assert!(notes[0].reason.as_deref().unwrap().contains(" between "));

    // A wallet nobody looked at until its lots expired: they expire, no late reminder.
    let mut quiet = WalletTx::new(head(), clock.as_ref());
    quiet.earn(&order(100), &rules).unwrap();
    clock.advance_secs(90 * 86_400);
    let mut quiet = WalletTx::new(quiet.head, clock.as_ref());
    quiet.housekeeping(30);
    let kinds: Vec<_> = quiet.entries.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EntryKind::Expired]);
}

#[test]
fn points_that_never_expire_are_never_reminded() {
    let clock = ManualClock::new(Timestamp(0));
    let mut tx = WalletTx::new(head(), clock.as_ref());
    tx.earn(&order(1000), &RuleSet::default()).unwrap();
    tx.housekeeping(3650);
    assert!(reminders(&tx).is_empty());
    assert_eq!(tx.head.next_due(3650), None);
}

#[test]
fn a_lot_given_back_below_a_later_reminded_one_is_still_reminded() {
    let clock = ManualClock::new(Timestamp(0));
    let rules = RuleSet {
        expiry: ExpiryPolicy::RollingMonths { months: 2 },
        ..RuleSet::default()
    };
    let mut tx = WalletTx::new(head(), clock.as_ref());
    tx.earn(&order(10_000), &rules).unwrap(); // lot A, 100 points
    clock.advance_secs(10 * 86_400);
    let mut tx = WalletTx::new(tx.head, clock.as_ref());
    tx.earn(&order(5_000), &rules).unwrap(); // lot B, 50 points, ten days later
    let hold = tx.hold(100, "r", 60).unwrap();
    let taken = tx.take_hold(hold.hold_id, true).unwrap();
    tx.capture(taken);
    let capture = tx.entries.last().unwrap().clone();
    assert_eq!(tx.head.lots.len(), 1, "A is spent");
    let b_expiry = tx.head.lots[0].expires_at.unwrap();
    clock.set(b_expiry.plus_days(-30));
    let mut tx = WalletTx::new(tx.head, clock.as_ref());
    tx.housekeeping(30);
    assert_eq!(reminders(&tx).len(), 1, "B is reminded");
    // The return of the purchase brings A back, expiring before B.
    tx.reverse_capture(&capture, 100, "returned");
    tx.housekeeping(30);
    let notes = reminders(&tx);
    assert_eq!(notes.len(), 2, "A is reminded too");
    assert_eq!(notes[1].lots[0].points, 100);
    assert!(notes[1].lots[0].expires_at.unwrap() < b_expiry);
    // Once past, reminded times are forgotten.
    clock.set(b_expiry.plus_days(1));
    let mut tx = WalletTx::new(tx.head, clock.as_ref());
    tx.housekeeping(30);
    assert!(tx.head.reminded.is_empty());
}

#[test]
fn a_due_hint_is_written_when_it_differs_from_the_last_one_written() {
    let clock = ManualClock::new(Timestamp(0));
    let rules = RuleSet {
        expiry: ExpiryPolicy::RollingMonths { months: 2 },
        ..RuleSet::default()
    };
    let old = head();
    let mut tx = WalletTx::new(old.clone(), clock.as_ref());
    tx.earn(&order(1_000), &rules).unwrap();
    let expiry = tx.head.lots[0].expires_at.unwrap();
    // Written with no window: the hint is the expiry itself.
    let first = crate::store::WalletCommit::after(&old, tx.head, tx.entries, 0);
    assert_eq!(first.due_at, Some(expiry));
    // The tenant opens a 30-day window; the next write moves the hint, although the head's
    // next due time under the new window is the same before and after the write.
    let mut tx = WalletTx::new(first.head.clone(), clock.as_ref());
    tx.earn(&order(1_000), &rules).unwrap();
    let second = crate::store::WalletCommit::after(&first.head, tx.head, tx.entries, 30);
    assert_eq!(second.due_at, Some(expiry.plus_days(-30)));
    let mut tx = WalletTx::new(second.head.clone(), clock.as_ref());
    tx.earn(&order(1_000), &rules).unwrap();
    let third = crate::store::WalletCommit::after(&second.head, tx.head, tx.entries, 30);
    assert_eq!(third.due_at, None, "unchanged: not written again");
}
