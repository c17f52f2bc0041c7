//! The tier-upgrade and dormant triggers under a controlled clock, with the real member
//! service (its orders, scoring run and activity on the embedded store) behind the campaign
//! service: an upgrade into a named tier rewards once per tier, a downgrade never; a dormant
//! member is rewarded once per spell however often its other scores change, a stale
//! `dormant` event for a member who ordered since rewards nothing, and a member who orders
//! and lapses again is a new spell.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_campaign::campaign::{Actions, Audience, Campaign, Reward, Schedule, Trigger, Variant};
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_common::Timestamp;
use loyalty_common::clock::{Clock, ManualClock};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_events::Envelope;
use loyalty_ledger::client::LedgerClient;
use loyalty_member::client::{InProcessMembers, MemberClient};
use loyalty_member::service::{Members, OrderInput, ProfileInput};
use loyalty_member::store::EmbeddedMemberStore;
use loyalty_member::vault::MasterKey;
use std::sync::Arc;

mod support;
use support::Ledger;

const DAY_MS: i64 = 86_400_000;
/// 2026-01-10T00:00Z.
const JAN_10_2026: i64 = 1_768_003_200_000;

fn campaign(id: &str, trigger: Trigger, points: i64) -> Campaign {
    Campaign {
        id: id.into(),
        name: "Lifecycle".into(),
        audience: Audience::Everyone,
        variants: vec![Variant {
            id: "gift".into(),
            weight: 1,
            reward: Reward::Points { points },
        }],
        holdout_percent: 0,
        schedule: Schedule {
            starts: "2027-01-01".into(),
            ends: Some("2028-12-31".into()),
            time_zone: "Asia/Shanghai".into(),
        },
        budget: None,
        frequency_cap: None,
        trigger: Some(trigger),
        actions: Actions::default(),
        attribution_days: None,
    }
}

fn event(name: &str, member: &str, data: &serde_json::Value, at_ms: i64) -> Envelope {
    let origin = loyalty_events::envelope::Origin {
        service: "member",
        tenant: "acme",
        member,
    };
    let id = format!("{name}-{member}-{at_ms}-{}", data.to_string().len());
    Envelope::from_stored(origin, name, id, 1, at_ms, &data.to_string())
}

struct World {
    members: Arc<Members>,
    campaigns: Campaigns,
    ledger: Arc<Ledger>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn world() -> World {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(Timestamp(JAN_10_2026));
    let member_store = EmbeddedMemberStore::open(dirs.0.path()).unwrap();
    let master = MasterKey::generate().unwrap().0;
    let members = Arc::new(Members::new(Arc::new(member_store), master, clock.clone()));
    let tenant = TenantId::parse("acme").unwrap();
    let store: Arc<dyn CampaignRepository> =
        Arc::new(EmbeddedCampaignStore::open(dirs.1.path()).unwrap());
    let ledger = Arc::new(Ledger::default());
    let client: Arc<dyn MemberClient> = Arc::new(InProcessMembers::new(Arc::clone(&members)));
    let campaigns = Campaigns::with_clock(store, Some(client), clock.clone())
        .with_ledger(Arc::clone(&ledger) as Arc<dyn LedgerClient>);
    for c in [
        campaign("COME-BACK", Trigger::Dormant, 50),
        campaign(
            "WELCOME-GOLD",
            Trigger::TierUpgrade {
                tiers: vec!["gold".into()],
            },
            20,
        ),
    ] {
        support::approve(&campaigns, &tenant, c).await;
    }
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
    async fn order(&self, member: &str, id: &str, at_ms: i64) {
        let input = OrderInput {
            order_id: id.into(),
            at: Some(Timestamp(at_ms)),
            total: 10_000,
            lines: Vec::new(),
            store: None,
            channel: None,
            refund_of: None,
        };
        let member = MemberId::parse(member).unwrap();
        self.members
            .record_order(&self.tenant, &member, input)
            .await
            .unwrap();
    }

    /// The scoring run's `scores_changed` for `member` saying dormant, as the bus delivers it
    /// now; `rfm` tells two such events apart.
    async fn dormant_event(&self, member: &str, rfm: u32) -> u32 {
        let data = serde_json::json!({"rfm": {"recency": 1, "frequency": rfm, "monetary": 1},
            "churn_risk": true, "lifecycle": "dormant"});
        let e = event("scores_changed", member, &data, self.clock.now().0);
        self.campaigns.on_event(&e).await.unwrap()
    }

    async fn tier_event(&self, member: &str, decision: serde_json::Value) -> u32 {
        let data = serde_json::json!({"decision": decision, "tier": decision["to"], "measure": 1});
        let e = event("tier_changed", member, &data, self.clock.now().0);
        self.campaigns.on_event(&e).await.unwrap()
    }
}

#[tokio::test]
async fn a_dormant_member_is_rewarded_once_per_spell() {
    let w = world().await;
    for m in ["m1", "m2"] {
        let member = MemberId::parse(m).unwrap();
        w.members
            .register(&w.tenant, &member, ProfileInput::default())
            .await
            .unwrap();
    }
    w.order("m1", "P1", JAN_10_2026).await;
    // 2027-02-01: m1 last ordered 387 days ago (dormant after 365 by default); m2 orders now.
    w.clock.set(Timestamp(JAN_10_2026 + 387 * DAY_MS));
    w.order("m2", "P2", w.clock.now().0 - DAY_MS).await;
    w.members.score_members(&w.tenant).await.unwrap();

    assert_eq!(w.dormant_event("m1", 1).await, 1);
    assert_eq!(
        w.dormant_event("m1", 1).await,
        1,
        "answered again, not paid"
    );
    assert_eq!(
        w.dormant_event("m1", 2).await,
        1,
        "another scores change in the same spell"
    );
    assert_eq!(w.ledger.balance("m1"), 50);
    assert_eq!(
        w.dormant_event("m2", 1).await,
        0,
        "a stale event: m2 has ordered since"
    );
    assert_eq!(w.ledger.balance("m2"), 0);

    // m1 comes back, then lapses again a year and more later: a new spell.
    w.order("m1", "P3", w.clock.now().0).await;
    w.clock.advance_secs(400 * 86_400);
    w.members.score_members(&w.tenant).await.unwrap();
    assert_eq!(w.dormant_event("m1", 3).await, 1);
    assert_eq!(w.ledger.balance("m1"), 100, "once per spell, twice in two");
}

#[tokio::test]
async fn an_upgrade_into_a_named_tier_is_rewarded_once() {
    let w = world().await;
    w.clock.set(Timestamp(JAN_10_2026 + 387 * DAY_MS));
    let up = |to: &str| serde_json::json!({"decision": "upgrade", "from": "silver", "to": to});
    assert_eq!(
        w.tier_event("m1", up("silver")).await,
        0,
        "not a named tier"
    );
    assert_eq!(w.tier_event("m1", up("gold")).await, 1);
    assert_eq!(w.tier_event("m1", up("gold")).await, 1, "answered again");
    let down = serde_json::json!({"decision": "downgrade", "from": "gold", "to": "silver"});
    assert_eq!(
        w.tier_event("m1", down).await,
        0,
        "a downgrade is not rewarded"
    );
    assert_eq!(
        w.tier_event("m1", up("gold")).await,
        1,
        "back to gold: once per tier"
    );
    assert_eq!(w.ledger.balance("m1"), 20);
}
