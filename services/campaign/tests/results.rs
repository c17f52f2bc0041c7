//! A campaign's effectiveness through the campaign service on the embedded store, under a
//! controlled clock: members reached per arm (the holdout too), coupons issued and redeemed
//! (an undo counted back), orders attributed by a coupon on them or within the attribution
//! window, a refund taken back once, every fact counted once however often it arrives, and
//! incremental spend against the holdout.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_campaign::campaign::results::HOLDOUT;
use loyalty_campaign::campaign::{Actions, Audience, Campaign, Reward, Schedule, Variant};
use loyalty_campaign::cart::{Cart, Line};
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::service::grants::Rewarded;
use loyalty_campaign::service::redeem::RedeemRequest;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_common::Timestamp;
use loyalty_common::clock::{Clock, ManualClock};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_events::Envelope;
use std::sync::Arc;

mod support;
use support::amount_off;

/// 2027-01-15T00:00:00+08:00: midnight in Shanghai.
const MIDNIGHT_SHANGHAI: i64 = 1_799_942_400_000;
const DAY_SECS: i64 = 86_400;

struct World {
    campaigns: Campaigns,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CampaignRepository> =
        Arc::new(EmbeddedCampaignStore::open(dir.path()).unwrap());
    let clock = ManualClock::new(Timestamp(MIDNIGHT_SHANGHAI - 3_600_000));
    let campaigns = Campaigns::with_clock(store, None, clock.clone());
    let tenant = TenantId::parse("acme").unwrap();
    let template = amount_off("FIVE", 500);
    campaigns
        .put_template(&tenant, template, None)
        .await
        .unwrap();
    let campaign = Campaign {
        id: "SPRING".into(),
        name: "Spring".into(),
        audience: Audience::Everyone,
        variants: vec![Variant {
            id: "five-off".into(),
            weight: 1,
            reward: Reward::Coupon {
                template: "FIVE".into(),
            },
        }],
        holdout_percent: 50,
        schedule: Schedule {
            starts: "2027-01-15".into(),
            ends: Some("2027-03-31".into()),
            time_zone: "Asia/Shanghai".into(),
        },
        budget: None,
        frequency_cap: None,
        trigger: None,
        actions: Actions::default(),
        attribution_days: Some(7),
    };
    support::approve(&campaigns, &tenant, campaign).await;
    clock.advance_secs(3_600);
    World {
        campaigns,
        clock,
        tenant,
        _dir: dir,
    }
}

impl World {
    /// The member service's `order_recorded` of `member`, happening now.
    async fn order(&self, member: &str, order: &str, total: i64, refund_of: Option<&str>) -> usize {
        let now = self.clock.now().0;
        let at = chrono::DateTime::from_timestamp_millis(now)
            .unwrap()
            .to_rfc3339();
        let data = serde_json::json!({"order_id": order, "at": at, "total": total,
            "refund_of": refund_of, "store": "s1", "channel": "pos", "points": null});
        let origin = loyalty_events::envelope::Origin {
            service: "member",
            tenant: "acme",
            member,
        };
        let e = Envelope::from_stored(
            origin,
            "order_recorded",
            format!("e-{order}"),
            1,
            now,
            &data.to_string(),
        );
        self.campaigns.attribute(&e).await.unwrap()
    }

    async fn redeem(&self, member: &str, code: &str, order: &str) -> String {
        let request = RedeemRequest {
            cart: Cart {
                member: member.into(),
                store: "s1".into(),
                brand: None,
                at_ms: 0,
                tier: None,
                lines: vec![Line {
                    id: "l1".into(),
                    sku: "SKU1".into(),
                    category: None,
                    quantity: 1,
                    unit_price: 10_000,
                }],
            },
            codes: vec![code.into()],
            redemption_id: format!("r-{order}"),
            order_id: order.into(),
            hold_secs: None,
        };
        self.campaigns.redeem(&self.tenant, &request).await.unwrap();
        format!("r-{order}")
    }
}

#[tokio::test]
async fn a_campaigns_results_count_each_fact_once_against_its_holdout() {
    let w = world().await;
    let (t, s) = (&w.tenant, &w.campaigns);
    let (mut rewarded, mut held) = (Vec::new(), Vec::new());
    for n in 0..40 {
        let member = MemberId::parse(format!("m{n}").as_str()).unwrap();
        match s.reward(t, "SPRING", &member, "spring").await.unwrap() {
            Rewarded::Granted(g) => rewarded.push((g.member.clone(), g.paid_with.clone().unwrap())),
            Rewarded::Holdout => held.push(member.to_string()),
        }
    }
    assert!(
        rewarded.len() >= 5 && held.len() >= 3,
        "{} and {}",
        rewarded.len(),
        held.len()
    );
    // Rewarded again under the same key: the same grants, nothing new to count.
    let again = MemberId::parse(held[0].as_str()).unwrap();
    assert_eq!(
        s.reward(t, "SPRING", &again, "spring").await.unwrap(),
        Rewarded::Holdout
    );
    s.tally_results().await.unwrap();
    assert_eq!(s.tally_results().await.unwrap(), 0, "the reader moved on");

    // Three rewarded members redeem their coupon on an order, recorded after it.
    for (m, code) in &rewarded[..3] {
        let order = format!("O-{m}");
        w.redeem(m, code, &order).await;
        assert_eq!(w.order(m, &order, 9_500, None).await, 1);
        assert_eq!(w.order(m, &order, 9_500, None).await, 0, "delivered again");
    }
    // Two held-out members order within the window: the holdout's baseline.
    for m in &held[..2] {
        assert_eq!(w.order(m, &format!("H-{m}"), 4_000, None).await, 1);
    }
    assert_eq!(
        w.order("stranger", "S-1", 7_000, None).await,
        0,
        "never reached"
    );

    // Eight days on: outside the 7-day window, only a coupon on the order attributes it.
    w.clock.advance_secs(8 * DAY_SECS);
    let (late, code) = &rewarded[3];
    assert_eq!(w.order(late, "NO-COUPON", 3_000, None).await, 0);
    w.redeem(late, code, "LATE").await;
    assert_eq!(w.order(late, "LATE", 9_500, None).await, 1);
    assert_eq!(w.order(&held[0], "H-LATE", 4_000, None).await, 0);

    // One redemption undone on a return, its order refunded (once); a refund of an order
    // the campaign never counted changes nothing.
    let (first, _) = &rewarded[0];
    s.undo(t, &format!("r-O-{first}")).await.unwrap();
    assert_eq!(
        w.order(first, "REFUND-1", -9_500, Some(&format!("O-{first}")))
            .await,
        1
    );
    assert_eq!(
        w.order(first, "REFUND-1", -9_500, Some(&format!("O-{first}")))
            .await,
        0
    );
    assert_eq!(
        w.order(late, "REFUND-2", -3_000, Some("NO-COUPON")).await,
        0
    );
    s.tally_results().await.unwrap();

    let r = s.campaign_results(t, "SPRING").await.unwrap();
    assert_eq!(r.attribution_days, 7);
    let arm = r.arms.iter().find(|a| a.arm == "five-off").unwrap();
    let holdout = r.arms.iter().find(|a| a.arm == HOLDOUT).unwrap();
    let members = rewarded.len() as i64;
    let c = arm.counts;
    assert_eq!(
        (c.members, c.issued, c.coupons),
        (members, members, members)
    );
    assert_eq!(
        (c.redeemed, c.discount),
        (3, 1_500),
        "four redeemed, one undone"
    );
    assert_eq!((c.orders, c.spend), (4, 3 * 9_500));
    assert_eq!(holdout.counts.members, held.len() as i64);
    assert_eq!((holdout.counts.orders, holdout.counts.spend), (2, 8_000));
    assert_eq!(arm.redemption_rate, Some(3.0 / members as f64));
    let baseline = 8_000.0 / held.len() as f64 * members as f64;
    assert_eq!(arm.incremental_spend, Some(28_500.0 - baseline));
    assert_eq!(
        arm.return_on_discount,
        Some((28_500.0 - baseline) / 1_500.0)
    );
    assert_eq!(r.total.counts, c, "one variant: the total is its arm");
}
