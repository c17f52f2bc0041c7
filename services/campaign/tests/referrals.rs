//! Referrals through the campaign service, with the real member service (profiles, blind
//! indexes, orders) behind it on the embedded stores, under a controlled clock: a code per
//! member; no self-referral, by id or by a phone the referrer presented before changing it;
//! both sides rewarded once on the referee's first qualifying order, the referrer under its
//! cap; both rewards taken back once when that order is refunded within the returns window,
//! and not after it.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_campaign::campaign::{Actions, Audience, Campaign, Reward, Schedule, Trigger, Variant};
use loyalty_campaign::referral::ReferralState;
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_common::Timestamp;
use loyalty_common::clock::{Clock, ManualClock};
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::personal::PersonalData;
use loyalty_events::Envelope;
use loyalty_ledger::client::LedgerClient;
use loyalty_member::client::{InProcessMembers, MemberClient};
use loyalty_member::service::{Members, OrderInput, ProfileInput, ProfilePatch};
use loyalty_member::store::EmbeddedMemberStore;
use loyalty_member::vault::MasterKey;
use std::sync::Arc;

mod support;
use support::Ledger;

/// 2027-01-15T00:00:00+08:00, an hour into the campaign.
const START: i64 = 1_799_942_400_000 + 3_600_000;
const DAY_SECS: i64 = 86_400;

struct World {
    members: Arc<Members>,
    campaigns: Campaigns,
    ledger: Arc<Ledger>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn id(m: &str) -> MemberId {
    MemberId::parse(m).unwrap()
}

async fn world() -> World {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(Timestamp(START));
    let member_store = EmbeddedMemberStore::open(dirs.0.path()).unwrap();
    let master = MasterKey::generate().unwrap().0;
    let members = Arc::new(Members::new(Arc::new(member_store), master, clock.clone()));
    let store: Arc<dyn CampaignRepository> =
        Arc::new(EmbeddedCampaignStore::open(dirs.1.path()).unwrap());
    let ledger = Arc::new(Ledger::default());
    let client: Arc<dyn MemberClient> = Arc::new(InProcessMembers::new(Arc::clone(&members)));
    let campaigns = Campaigns::with_clock(store, Some(client), clock.clone())
        .with_ledger(Arc::clone(&ledger) as Arc<dyn LedgerClient>);
    let tenant = TenantId::parse("acme").unwrap();
    let campaign = Campaign {
        id: "REFER".into(),
        name: "Bring a friend".into(),
        audience: Audience::Everyone,
        variants: vec![Variant {
            id: "thanks".into(),
            weight: 1,
            reward: Reward::Points { points: 100 },
        }],
        holdout_percent: 0,
        schedule: Schedule {
            starts: "2027-01-01".into(),
            ends: Some("2027-12-31".into()),
            time_zone: "Asia/Shanghai".into(),
        },
        budget: None,
        frequency_cap: None,
        trigger: Some(Trigger::Referral {
            referee_points: 50,
            min_order: 10_000,
            max_per_referrer: Some(2),
            returns_days: 30,
        }),
        actions: Actions::default(),
        attribution_days: None,
    };
    support::approve(&campaigns, &tenant, campaign).await;
    World {
        members,
        campaigns,
        ledger,
        clock,
        tenant,
        _dirs: dirs,
    }
}

impl World {
    async fn join(&self, m: &str, phone: &str) {
        let mut input = ProfileInput::default();
        input.personal.phone = Some(PersonalData::from(phone.to_string()));
        self.members
            .register(&self.tenant, &id(m), input)
            .await
            .unwrap();
    }

    /// Records an order (or a refund) in the member service and delivers its event to the
    /// campaign service, as the bus would; twice when `again`.
    async fn order(&self, m: &str, order: &str, total: i64, refund_of: Option<&str>) {
        let input = OrderInput {
            order_id: order.into(),
            at: None,
            total,
            lines: Vec::new(),
            store: None,
            channel: None,
            refund_of: refund_of.map(str::to_string),
        };
        self.members
            .record_order(&self.tenant, &id(m), input)
            .await
            .unwrap();
        let now = self.clock.now().0;
        let at = chrono::DateTime::from_timestamp_millis(now)
            .unwrap()
            .to_rfc3339();
        let data = serde_json::json!({"order_id": order, "at": at, "total": total,
            "refund_of": refund_of, "store": null, "channel": null, "points": null});
        let origin = loyalty_events::envelope::Origin {
            service: "member",
            tenant: "acme",
            member: m,
        };
        let e = Envelope::from_stored(
            origin,
            "order_recorded",
            format!("e-{order}"),
            1,
            now,
            &data.to_string(),
        );
        // Delivered twice: the second changes nothing.
        self.campaigns.on_event(&e).await.unwrap();
        self.campaigns.on_event(&e).await.unwrap();
    }

    async fn refer(&self, code: &str, referee: &str) -> Result<ReferralState, ErrorCode> {
        self.campaigns
            .refer(&self.tenant, "REFER", code, &id(referee))
            .await
            .map(|r| r.state)
            .map_err(|e| e.code)
    }

    fn balances(&self, ms: &[&str]) -> Vec<i64> {
        ms.iter().map(|m| self.ledger.balance(m)).collect()
    }
}

#[tokio::test]
async fn a_referral_rewards_both_once_under_the_cap_and_a_refund_takes_both_back() {
    let w = world().await;
    for (m, phone) in [
        ("ann", "13800000001"),
        ("bob", "13800000002"),
        ("cat", "13800000003"),
        ("dan", "13800000004"),
        ("eve", "13800000005"),
    ] {
        w.join(m, phone).await;
    }
    let t = &w.tenant;
    let code = w.campaigns.referral_code(t, &id("ann")).await.unwrap();
    assert!(code.starts_with('R'), "{code}");
    assert_eq!(
        w.campaigns.referral_code(t, &id("ann")).await.unwrap(),
        code
    );
    let cats = w.campaigns.referral_code(t, &id("cat")).await.unwrap();
    assert_ne!(cats, code);

    assert_eq!(w.refer(&code, "bob").await, Ok(ReferralState::Pending));
    assert_eq!(
        w.refer(&code, "bob").await,
        Ok(ReferralState::Pending),
        "asked again"
    );
    assert_eq!(w.refer(&cats, "bob").await, Err(ErrorCode::ReferralExists));
    assert_eq!(w.refer(&code, "ann").await, Err(ErrorCode::SelfReferral));
    assert_eq!(
        w.refer("RNOSUCHCODE2", "bob").await,
        Err(ErrorCode::ReferralCodeNotFound)
    );

    // ann changes her phone, then opens another account with the old one: still ann.
    let mut patch = ProfilePatch::default();
    patch.personal.insert(
        "phone".into(),
        Some(PersonalData::from("13800000009".to_string())),
    );
    w.members.update(t, &id("ann"), patch).await.unwrap();
    w.join("ann2", "13800000001").await;
    assert_eq!(w.refer(&code, "ann2").await, Err(ErrorCode::SelfReferral));

    // A small first order does not qualify; the first at the minimum does, once.
    w.order("bob", "B1", 5_000, None).await;
    assert_eq!(w.balances(&["ann", "bob"]), [0, 0]);
    w.order("bob", "B2", 12_000, None).await;
    assert_eq!(w.balances(&["ann", "bob"]), [100, 50]);
    w.order("bob", "B3", 20_000, None).await;
    assert_eq!(
        w.balances(&["ann", "bob"]),
        [100, 50],
        "only the first qualifying order"
    );

    // The cap of 2 per referrer: dan's qualification rewards dan, not ann.
    for m in ["cat", "dan"] {
        assert_eq!(w.refer(&code, m).await, Ok(ReferralState::Pending));
    }
    w.order("cat", "C1", 10_000, None).await;
    w.order("dan", "D1", 10_000, None).await;
    assert_eq!(w.balances(&["ann", "cat", "dan"]), [200, 50, 50]);

    // bob's qualifying order is refunded within the window: both rewards taken back, once.
    w.clock.advance_secs(10 * DAY_SECS);
    w.order("bob", "B2-R", -12_000, Some("B2")).await;
    assert_eq!(w.balances(&["ann", "bob"]), [100, 0]);
    let bobs = w.campaigns.referrals_of(t, &id("bob")).await.unwrap();
    assert_eq!(bobs[0].state, ReferralState::Reversed);
    assert_eq!(bobs[0].taken_back, [100, 50]);
    // A refund of another order changes nothing.
    w.order("bob", "B3-R", -20_000, Some("B3")).await;
    assert_eq!(w.balances(&["ann", "bob"]), [100, 0]);

    // cat spent her points; her order is refunded: what is left is taken back.
    w.ledger.spend("cat", 30);
    w.order("cat", "C1-R", -10_000, Some("C1")).await;
    assert_eq!(
        w.balances(&["ann", "cat"]),
        [0, 0],
        "100 from ann, the 20 cat had left"
    );

    // After the returns window, a refund takes nothing back.
    w.clock.advance_secs(31 * DAY_SECS);
    w.order("dan", "D1-R", -10_000, Some("D1")).await;
    assert_eq!(w.balances(&["dan"]), [50]);

    // A member who has ordered is no referee; eve joined and ordered before being referred.
    w.order("eve", "E1", 10_000, None).await;
    assert_eq!(
        w.refer(&code, "eve").await,
        Err(ErrorCode::ReferralNotEligible)
    );
}
