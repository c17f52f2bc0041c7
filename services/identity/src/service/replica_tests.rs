//! Replicas of the identity service on one store: a change made by one reaches the others
//! through the change feed, without waiting for a reload.

use super::tests::{PASSWORD, harness};
use super::*;
use crate::changes::{self, Heard, LocalFeed};
use crate::permissions::*;
use loyalty_common::ids::TenantId;
use std::future::Future;
use std::time::Duration;

/// A second replica on the harness's store, following `feed`.
async fn replica(h: &super::tests::Harness, feed: &Arc<LocalFeed>) -> Arc<IdentityService> {
    let other = h.replica().await;
    other.announce_on(feed.clone());
    // An hour: no timed resync during the test, so only announcements can explain a change.
    changes::follow(
        Arc::clone(&other),
        feed.follower(),
        Duration::from_secs(3600),
    );
    other
}

/// Waits up to two seconds for `check` to hold.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within two seconds");
}

#[tokio::test]
async fn grants_revocations_and_logouts_reach_the_other_replica_at_once() {
    let h = harness().await;
    let feed = Arc::new(LocalFeed::default());
    h.service.announce_on(feed.clone());
    let (_root, ann) = h.acme_admin().await;
    let other = replica(&h, &feed).await;
    let acme = TenantId::parse("acme").unwrap();

    // A key the other replica has used (and whose refusal of STAFF_WRITE it remembers).
    let key = h
        .service
        .create_api_key(&ann, &acme, "crm", &["partner".to_string()], None, "r")
        .await
        .unwrap();
    let partner = other.authenticate(&key.key).await.unwrap();
    assert!(
        other
            .authorize(&partner, "acme", STAFF_WRITE, "r")
            .await
            .is_err()
    );

    // A role granted on one replica is honoured by the other.
    let subject = partner.subject.clone();
    h.service
        .grant(&ann, "acme", &subject, "tenant_admin", "acme", "r")
        .await
        .unwrap();
    eventually("the grant reaches the other replica", || async {
        other
            .authorize(&partner, "acme", STAFF_WRITE, "r")
            .await
            .is_ok()
    })
    .await;

    // A key revoked on one replica stops on the other, with no clock moving.
    h.service.revoke_api_key(&ann, key.id, "r").await.unwrap();
    eventually("the revoked key stops on the other replica", || async {
        other.authenticate(&key.key).await.is_err()
    })
    .await;

    // A session ended on one replica is refused by the other.
    let session = other
        .login("acme", "ann", PASSWORD, None, "r")
        .await
        .unwrap();
    let me = other.authenticate(&session.access_token).await.unwrap();
    h.service.logout(&me, "r").await.unwrap();
    eventually("the logout reaches the other replica", || async {
        other.authenticate(&session.access_token).await.is_err()
    })
    .await;
}

#[tokio::test]
async fn a_replica_that_missed_announcements_catches_up_on_resync() {
    let h = harness().await;
    let (_root, ann) = h.acme_admin().await;
    // Not following any feed: it hears nothing.
    let deaf = h.replica().await;
    let acme = TenantId::parse("acme").unwrap();
    let key = h
        .service
        .create_api_key(&ann, &acme, "crm", &["partner".to_string()], None, "r")
        .await
        .unwrap();
    let partner = deaf.authenticate(&key.key).await.unwrap();
    assert!(
        deaf.authorize(&partner, "acme", WALLET_WRITE, "r")
            .await
            .is_err(),
        "policy as loaded"
    );
    h.service.revoke_api_key(&ann, key.id, "r").await.unwrap();
    assert!(
        deaf.authenticate(&key.key).await.is_ok(),
        "its copy of the key"
    );

    deaf.hear(Heard::Resync).await.unwrap();
    assert!(
        deaf.authorize(&partner, "acme", WALLET_WRITE, "r")
            .await
            .is_ok()
    );
    assert!(deaf.authenticate(&key.key).await.is_err());
}

#[tokio::test]
async fn a_deactivation_reaches_the_other_replica_and_survives_a_restart() {
    let h = harness().await;
    let feed = Arc::new(LocalFeed::default());
    h.service.announce_on(feed.clone());
    let (_root, ann) = h.acme_admin().await;
    let roles = [("clerk".to_string(), "acme".to_string())];
    let new = NewStaff {
        username: "cid".into(),
        display_name: "Cid".into(),
        roles: roles.to_vec(),
        password: Some(PASSWORD.into()),
    };
    let cid = h
        .service
        .create_staff(&ann, "acme", new, "r")
        .await
        .unwrap();
    let other = replica(&h, &feed).await;
    let token = h
        .service
        .login("acme", "cid", PASSWORD, None, "r")
        .await
        .unwrap()
        .access_token;
    other.authenticate(&token).await.unwrap();

    h.service
        .set_staff_active(&ann, cid.id, false, "r")
        .await
        .unwrap();
    assert!(
        h.service.authenticate(&token).await.is_err(),
        "refused here at once"
    );
    eventually("the deactivation reaches the other replica", || async {
        other.authenticate(&token).await.is_err()
    })
    .await;

    // Reactivated, the account logs in again; the session it had stays ended, on a replica
    // started afterwards too.
    h.clock.advance_secs(1);
    h.service
        .set_staff_active(&ann, cid.id, true, "r")
        .await
        .unwrap();
    h.clock.advance_secs(1);
    let fresh = h
        .service
        .login("acme", "cid", PASSWORD, None, "r")
        .await
        .unwrap()
        .access_token;
    let restarted = h.replica().await;
    assert!(restarted.authenticate(&token).await.is_err());
    assert!(restarted.authenticate(&fresh).await.is_ok());
    eventually("the reactivation reaches the other replica", || async {
        other.authenticate(&fresh).await.is_ok()
    })
    .await;
    assert!(other.authenticate(&token).await.is_err());
}
