//! Referrals in the campaign store's port: one referral code per member, unique per tenant;
//! fingerprints that name the other members who presented them, until forgotten; one
//! referral per referee and campaign; and a referrer's cap counted once per qualified
//! referral, given back on a reversal, and never passed under racing qualifications.

#![allow(clippy::unwrap_used)] // A panic is a failed assertion with its location.

use super::{Stores, event, tenant};
use crate::referral::{Referral, ReferralMoved, ReferralState, Referred};
use loyalty_common::ids::TenantId;
use std::sync::Arc;

fn referral(t: &TenantId, campaign: &str, referrer: &str, referee: &str) -> Referral {
    Referral {
        tenant: t.to_string(),
        campaign: campaign.into(),
        referrer: referrer.into(),
        referee: referee.into(),
        code: format!("R-{referrer}"),
        state: ReferralState::Pending,
        created_ms: 1_000,
        updated_ms: 1_000,
        order: None,
        order_ms: None,
        referrer_rewarded: false,
        taken_back: [0, 0],
    }
}

/// The referral as the move left it, or a panic naming what it was.
fn moved(m: ReferralMoved) -> Referral {
    match m {
        ReferralMoved::Yes(r) => *r,
        other => panic!("expected a move, got {other:?}"),
    }
}

pub async fn a_referral_code_is_one_per_member_and_unique_per_tenant(stores: Stores) {
    let (s, t) = (&stores.store, tenant());
    assert_eq!(s.referral_code(&t, "m1").await.unwrap(), None);
    let claim = |m: &'static str, code: &'static str| s.claim_referral_code(&t, m, code);
    assert_eq!(claim("m1", "RAAA").await.unwrap().as_deref(), Some("RAAA"));
    assert_eq!(
        claim("m1", "RBBB").await.unwrap().as_deref(),
        Some("RAAA"),
        "one code per member"
    );
    assert_eq!(claim("m2", "RAAA").await.unwrap(), None, "another's code");
    assert_eq!(claim("m2", "RCCC").await.unwrap().as_deref(), Some("RCCC"));
    assert_eq!(
        s.code_holder(&t, "RAAA").await.unwrap().as_deref(),
        Some("m1")
    );
    assert_eq!(s.code_holder(&t, "RBBB").await.unwrap(), None);
    assert_eq!(
        s.referral_code(&t, "m2").await.unwrap().as_deref(),
        Some("RCCC")
    );
    let other = tenant();
    assert_eq!(
        s.claim_referral_code(&other, "m9", "RAAA")
            .await
            .unwrap()
            .as_deref(),
        Some("RAAA"),
        "codes are unique per tenant"
    );
}

pub async fn fingerprints_name_the_other_members_that_presented_them(stores: Stores) {
    let (s, t) = (&stores.store, tenant());
    let fps = |list: &[&str]| list.iter().map(|f| f.to_string()).collect::<Vec<_>>();
    let remember = |m: &'static str, list: Vec<String>| {
        let (s, t) = (Arc::clone(s), t.clone());
        async move { s.remember_fingerprints(&t, m, &list).await.unwrap() }
    };
    assert!(
        remember("m1", fps(&["phone:a", "email:b"]))
            .await
            .is_empty()
    );
    assert_eq!(remember("m2", fps(&["email:b", "phone:c"])).await, ["m1"]);
    assert!(
        remember("m1", fps(&["phone:a"])).await.is_empty(),
        "a member's own fingerprints name no one"
    );
    assert_eq!(remember("m2", fps(&["email:b"])).await, ["m1"]);
    s.forget_fingerprints(&t, "m1").await.unwrap();
    assert_eq!(remember("m3", fps(&["phone:a", "email:b"])).await, ["m2"]);
    let elsewhere = s
        .remember_fingerprints(&tenant(), "m4", &fps(&["phone:c"]))
        .await
        .unwrap();
    assert!(elsewhere.is_empty(), "per tenant");
}

pub async fn a_referral_is_one_per_referee_and_campaign(stores: Stores) {
    let (s, t) = (&stores.store, tenant());
    let first = referral(&t, "C", "m1", "m2");
    let evt = || vec![event(&t, "referral_recorded")];
    assert_eq!(s.refer(&first, evt()).await.unwrap(), Referred::Yes);
    assert_eq!(
        s.refer(&first, evt()).await.unwrap(),
        Referred::Exists(Box::new(first.clone()))
    );
    let other_referrer = referral(&t, "C", "m3", "m2");
    assert_eq!(
        s.refer(&other_referrer, evt()).await.unwrap(),
        Referred::Exists(Box::new(first.clone())),
        "the first referrer keeps the referee"
    );
    let other_campaign = referral(&t, "D", "m3", "m2");
    assert_eq!(
        s.refer(&other_campaign, evt()).await.unwrap(),
        Referred::Yes
    );
    let mut of = s.referrals_of(&t, "m2").await.unwrap();
    of.sort_by(|a, b| a.campaign.cmp(&b.campaign));
    assert_eq!(of, vec![first, other_campaign]);
    assert!(s.referrals_of(&t, "m1").await.unwrap().is_empty());
    assert!(s.referrals_of(&tenant(), "m2").await.unwrap().is_empty());
}

pub async fn a_referrer_is_rewarded_under_its_cap_once_per_referral(stores: Stores) {
    let (s, t) = (&stores.store, tenant());
    for referee in ["m2", "m3", "m4", "m5"] {
        let r = referral(&t, "C", "m1", referee);
        assert_eq!(s.refer(&r, Vec::new()).await.unwrap(), Referred::Yes);
    }
    let qualify = |referee: &'static str| {
        let (s, t) = (Arc::clone(s), t.clone());
        let order = format!("P-{referee}");
        async move {
            s.qualify_referral(&t, "C", referee, &order, 5_000, Some(2), 6_000, Vec::new())
                .await
                .unwrap()
        }
    };
    let m2 = moved(qualify("m2").await);
    assert_eq!(
        (
            m2.state,
            m2.referrer_rewarded,
            m2.order.as_deref(),
            m2.order_ms
        ),
        (ReferralState::Qualified, true, Some("P-m2"), Some(5_000))
    );
    assert_eq!(m2.updated_ms, 6_000);
    assert_eq!(
        qualify("m2").await,
        ReferralMoved::NotFrom(Box::new(m2.clone())),
        "qualified once"
    );
    assert!(moved(qualify("m3").await).referrer_rewarded);
    assert!(
        !moved(qualify("m4").await).referrer_rewarded,
        "the cap of 2 is reached: only the referee is rewarded"
    );
    let reversed = moved(
        s.reverse_referral(
            &t,
            "C",
            "m2",
            [10, 5],
            7_000,
            vec![event(&t, "referral_reversed")],
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        (reversed.state, reversed.taken_back, reversed.updated_ms),
        (ReferralState::Reversed, [10, 5], 7_000)
    );
    assert!(matches!(
        s.reverse_referral(&t, "C", "m2", [1, 1], 7_000, Vec::new())
            .await
            .unwrap(),
        ReferralMoved::NotFrom(_)
    ));
    assert!(
        moved(qualify("m5").await).referrer_rewarded,
        "a reversal gives its place under the cap back"
    );
    assert_eq!(
        s.qualify_referral(&t, "C", "m9", "P", 1, None, 1, Vec::new())
            .await
            .unwrap(),
        ReferralMoved::Missing
    );
    assert_eq!(
        s.reverse_referral(&t, "C", "m3", [0, 0], 8_000, Vec::new())
            .await
            .map(moved)
            .unwrap()
            .state,
        ReferralState::Reversed
    );
}

pub async fn racing_qualifications_never_pass_a_referrers_cap(stores: Stores) {
    let (s, t) = (&stores.store, tenant());
    for n in 0..20 {
        let r = referral(&t, "C", "m0", &format!("r{n}"));
        s.refer(&r, Vec::new()).await.unwrap();
    }
    let racers: Vec<_> = (0..20)
        .map(|n| {
            let (s, t) = (Arc::clone(s), t.clone());
            tokio::spawn(async move {
                let referee = format!("r{n}");
                for _ in 0..50 {
                    let order = format!("P{n}");
                    match s
                        .qualify_referral(&t, "C", &referee, &order, 1, Some(5), 2, Vec::new())
                        .await
                    {
                        Ok(m) => return moved(m).referrer_rewarded,
                        // Told to retry under contention, as a caller would.
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                    }
                }
                panic!("referee {referee} never qualified");
            })
        })
        .collect();
    let mut rewarded = 0;
    for r in racers {
        rewarded += usize::from(r.await.unwrap());
    }
    assert_eq!(rewarded, 5, "exactly the cap");
}
