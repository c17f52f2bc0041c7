//! Check-ins in the campaign store's port: once per local day, a streak that continues on the
//! next day and restarts after a missed one, an earlier day answered as the last check-in
//! stands, per member and campaign, and racing check-ins of one day counted once.

#![allow(clippy::unwrap_used)] // A panic is a failed assertion with its location.

use super::{Stores, event, tenant};
use crate::store::CheckedIn;
use std::sync::Arc;

fn checked(day: i64, streak: u32, new: bool) -> CheckedIn {
    CheckedIn { day, streak, new }
}

pub async fn a_member_checks_in_once_a_day_and_a_missed_day_restarts_the_streak(stores: Stores) {
    let (s, t) = (&stores.store, tenant());
    let check_in = |member: &'static str, day: i64| {
        let (s, t) = (Arc::clone(s), t.clone());
        async move {
            let events = vec![event(&t, "member_checked_in")];
            s.check_in(&t, "DAILY", member, day, events).await.unwrap()
        }
    };
    assert_eq!(check_in("m1", 100).await, checked(100, 1, true));
    assert_eq!(
        check_in("m1", 100).await,
        checked(100, 1, false),
        "once a day"
    );
    assert_eq!(check_in("m1", 101).await, checked(101, 2, true));
    assert_eq!(check_in("m1", 102).await, checked(102, 3, true));
    assert_eq!(
        check_in("m1", 101).await,
        checked(102, 3, false),
        "an earlier day answers the last check-in"
    );
    assert_eq!(
        check_in("m1", 104).await,
        checked(104, 1, true),
        "a day missed"
    );
    assert_eq!(
        check_in("m2", 104).await,
        checked(104, 1, true),
        "per member"
    );
    let other = s
        .check_in(&t, "WEEKLY", "m1", 104, Vec::new())
        .await
        .unwrap();
    assert_eq!(other, checked(104, 1, true), "per campaign");
    let elsewhere = s
        .check_in(&tenant(), "DAILY", "m1", 105, Vec::new())
        .await
        .unwrap();
    assert_eq!(elsewhere, checked(105, 1, true), "per tenant");
}

pub async fn racing_check_ins_of_one_day_count_once(stores: Stores) {
    let (s, t) = (&stores.store, tenant());
    s.check_in(&t, "DAILY", "m1", 10, Vec::new()).await.unwrap();
    let racers: Vec<_> = (0..20)
        .map(|_| {
            let (s, t) = (Arc::clone(s), t.clone());
            tokio::spawn(async move {
                for _ in 0..50 {
                    match s.check_in(&t, "DAILY", "m1", 11, Vec::new()).await {
                        Ok(c) => return c,
                        // Told to retry under contention, as a caller would.
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                    }
                }
                panic!("never checked in");
            })
        })
        .collect();
    let mut new = 0;
    for r in racers {
        let c = r.await.unwrap();
        assert_eq!((c.day, c.streak), (11, 2));
        new += usize::from(c.new);
    }
    assert_eq!(new, 1, "one of the racers checked in; the others found it");
}
