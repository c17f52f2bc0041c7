//! The control keyspace on the CQL cluster `SCYLLA_NODES` names (skipped without one): leases
//! renewed and lapsing, a take-over refused while the other region's lease lives and done
//! once it has lapsed, a planned move in two steps, and concurrent changes of the homes that
//! all apply, each under its own epoch.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_region::control::ControlPlane;
use loyalty_region::control::cql::CqlControl;
use loyalty_region::{Epoch, Region};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Short, so the test waits little for a lease to lapse (CQL counts TTLs in seconds).
const TTL: Duration = Duration::from_secs(1);

async fn where_homed(control: &CqlControl) -> (Epoch, BTreeMap<String, (String, bool)>) {
    let homes = control.homes().await.unwrap();
    let by_tenant = homes
        .homes
        .into_iter()
        .map(|(t, h)| (t, (h.region.to_string(), h.moving)))
        .collect();
    (homes.epoch, by_tenant)
}

fn at(region: &str, moving: bool) -> (String, bool) {
    (region.to_string(), moving)
}

#[tokio::test]
async fn leases_take_overs_and_moves_are_decided_by_the_majority() {
    let Some((cluster, keyspace)) =
        loyalty_scylla::conformance::scylla("regions", loyalty_region::schema::MIGRATIONS).await
    else {
        return;
    };
    let control = CqlControl::prepare(cluster, &keyspace).await.unwrap();
    // Region names of this run's own: the keyspace is shared by the run's test processes.
    let run = loyalty_scylla::conformance::unique("r");
    let (a, b) = (
        Region::parse(&format!("{run}-a")).unwrap(),
        Region::parse(&format!("{run}-b")).unwrap(),
    );
    let (acme, globex) = (format!("{run}-acme"), format!("{run}-globex"));

    assert!(control.renew(&a, TTL).await.unwrap().held);
    assert!(control.renew(&b, TTL).await.unwrap().held);
    assert_eq!(control.last_beat(&a).await.unwrap(), None);
    control.beat(&a, 1_000).await.unwrap();
    control.beat(&a, 2_000).await.unwrap();
    assert_eq!(control.last_beat(&a).await.unwrap(), Some(2_000));
    assert!(control.place(&acme, &a).await.unwrap());
    assert!(control.place(&globex, &b).await.unwrap());
    assert!(!control.place(&acme, &b).await.unwrap(), "homed once");
    let (placed, homes) = where_homed(&control).await;
    assert_eq!(homes[&acme], at(a.as_str(), false));
    assert_eq!(homes[&globex], at(b.as_str(), false));

    // While a renews, b cannot take its tenants; once a stops, its lease lapses and b can.
    assert!(control.renew(&a, TTL).await.unwrap().held);
    assert!(!control.take_over(&a, &b).await.unwrap());
    let started = Instant::now();
    while !control.take_over(&a, &b).await.unwrap() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a's lease never lapsed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (taken, homes) = where_homed(&control).await;
    assert!(taken > placed, "{taken:?} after {placed:?}");
    assert_eq!(homes[&acme], at(b.as_str(), false));
    let renewal = control.renew(&a, TTL).await.unwrap();
    assert!(!renewal.held, "a's lease is b's now");
    assert!(renewal.epoch >= taken);
    // A take-over repeated (as after a crash between its steps) finds nothing left to move.
    assert!(control.take_over(&a, &b).await.unwrap());
    assert_eq!(where_homed(&control).await.1[&acme], at(b.as_str(), false));

    // Failback: a gets its lease back, acme is written nowhere, then homed in a.
    let marked = control
        .start_move(std::slice::from_ref(&acme), &a)
        .await
        .unwrap();
    assert!(marked > taken);
    assert!(control.renew(&a, TTL).await.unwrap().held);
    assert_eq!(where_homed(&control).await.1[&acme], at(b.as_str(), true));
    let back = control.finish_move().await.unwrap();
    assert!(back > marked);
    assert_eq!(where_homed(&control).await.1[&acme], at(a.as_str(), false));

    // Concurrent changes all apply, one epoch each.
    let tenants: Vec<String> = (0..4).map(|n| format!("{run}-t{n}")).collect();
    let before = where_homed(&control).await.0;
    let placed = futures_placed(&control, &tenants, &a).await;
    assert_eq!(placed, [true; 4]);
    let (after, homes) = where_homed(&control).await;
    assert!(after.0 >= before.0 + 4, "{after:?} after {before:?}");
    for tenant in &tenants {
        assert_eq!(homes[tenant], at(a.as_str(), false));
    }
}

async fn futures_placed(control: &CqlControl, tenants: &[String], region: &Region) -> Vec<bool> {
    let (p0, p1, p2, p3) = tokio::join!(
        control.place(&tenants[0], region),
        control.place(&tenants[1], region),
        control.place(&tenants[2], region),
        control.place(&tenants[3], region),
    );
    vec![p0.unwrap(), p1.unwrap(), p2.unwrap(), p3.unwrap()]
}
