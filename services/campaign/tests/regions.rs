//! The campaign service's background work in two regions (decision 0019): each region's
//! outbox reader pays the bonuses of the tenants homed in it and passes the others' by; a
//! region that has taken the other's tenants over pays what the lost region left unpaid; a
//! failback hands the work back without paying anything twice; nothing is paid while no
//! region may write a tenant (its home is moving, or the lease is not held).
//!
//! Both regions' services share one store here, as both regions' datacenters hold the same
//! data; each pays into a ledger of its own, so the test sees which region paid.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_campaign::campaign::{Actions, Audience, Campaign, Reward, Schedule, Trigger, Variant};
use loyalty_campaign::cart::{Cart, Line};
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::service::payouts;
use loyalty_campaign::service::redeem::RedeemRequest;
use loyalty_campaign::service::triggers;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_campaign::template::{Benefit, CouponTemplate};
use loyalty_campaign::trigger_feed::{Handler, TriggerFeed};
use loyalty_common::Timestamp;
use loyalty_common::clock::ManualClock;
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_events::EventBus;
use loyalty_events::config::EmbeddedBusConfig;
use loyalty_events::embedded::InProcessBus;
use loyalty_events::subscribe::SubscriptionSpec;
use loyalty_ledger::client::LedgerClient;
use loyalty_region::background::SharedView;
use loyalty_region::lease::TTL;
use loyalty_region::{Epoch, Home, Region};
use std::sync::Arc;
use std::time::Duration;

const START: i64 = 1_800_000_000_000;

mod support;
use support::Ledger;

fn region(name: &str) -> Region {
    Region::parse(name).unwrap()
}

/// What a region's view reads: `homes` (tenant, region, moving) at `epoch`, its own lease
/// held or not, and whether it holds the other region's row.
fn read(view: &SharedView, epoch: u64, homes: &[(&str, &str, bool)], held: bool, peer: bool) {
    let homes: Vec<(String, Home)> = homes
        .iter()
        .map(|(tenant, home, moving)| {
            let home = Home {
                region: region(home),
                epoch: Epoch(epoch),
                moving: *moving,
            };
            (tenant.to_string(), home)
        })
        .collect();
    let sent = view.now();
    view.update(|v| {
        v.homes_read(Epoch(epoch), homes);
        v.own_row_read(sent, held.then_some(TTL), Epoch(epoch));
        v.peer_row_read(peer);
    });
}

struct InRegion {
    campaigns: Campaigns,
    ledger: Arc<Ledger>,
    view: SharedView,
}

struct World {
    a: InRegion,
    b: InRegion,
    store: Arc<dyn CampaignRepository>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// Double points (1 point per 1.00 spent, doubled), one use per code, valid 30 days.
fn bonus_template() -> CouponTemplate {
    CouponTemplate {
        id: "DOUBLE".into(),
        name: "Double points".into(),
        benefit: Benefit::PointsMultiplier {
            multiplier_percent: 200,
            points_per_unit: 1,
        },
        ..support::amount_off("DOUBLE", 0)
    }
}

/// `acme` homed in `a`, `globex` in `b`, both regions holding their leases.
async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CampaignRepository> =
        Arc::new(EmbeddedCampaignStore::open(dir.path()).unwrap());
    let clock = ManualClock::new(Timestamp(START));
    let region_of = |me: &str, peer: &str| {
        let ledger = Arc::new(Ledger::default());
        let view = SharedView::new(region(me), region(peer));
        let campaigns = Campaigns::with_clock(Arc::clone(&store), None, clock.clone())
            .with_ledger(Arc::clone(&ledger) as Arc<dyn LedgerClient>)
            .with_regions(view.clone());
        InRegion {
            campaigns,
            ledger,
            view,
        }
    };
    let (a, b) = (region_of("a", "b"), region_of("b", "a"));
    let homes = [("acme", "a", false), ("globex", "b", false)];
    read(&a.view, 2, &homes, true, false);
    read(&b.view, 2, &homes, true, false);
    for tenant in ["acme", "globex"] {
        let tenant = TenantId::parse(tenant).unwrap();
        a.campaigns
            .put_template(&tenant, bonus_template(), None)
            .await
            .unwrap();
    }
    World {
        a,
        b,
        store,
        clock,
        _dir: dir,
    }
}

/// A coupon issued now to `member` of `tenant`: its code.
async fn issue(w: &World, tenant: &str, member: &str, key: &str) -> String {
    let tenant = TenantId::parse(tenant).unwrap();
    let m = MemberId::parse(member).unwrap();
    let issued = w.a.campaigns.issue(&tenant, "DOUBLE", &m, key).await;
    issued.unwrap().code
}

/// A 250.00 cart of `member` of `tenant` with a coupon issued now: 250 bonus points.
async fn redeem(w: &World, tenant: &str, member: &str, id: &str) {
    let code = issue(w, tenant, member, &format!("issue-{id}")).await;
    let tenant = TenantId::parse(tenant).unwrap();
    let request = RedeemRequest {
        cart: Cart {
            member: member.into(),
            store: "s1".into(),
            brand: None,
            at_ms: START + 1_000,
            tier: None,
            lines: vec![Line {
                id: "l1".into(),
                sku: "TEA-1".into(),
                category: None,
                quantity: 1,
                unit_price: 25_000,
            }],
        },
        codes: vec![code],
        redemption_id: id.into(),
        order_id: format!("order-{id}"),
        hold_secs: None,
    };
    w.a.campaigns.redeem(&tenant, &request).await.unwrap();
}

async fn position(w: &World, region: &str) -> u64 {
    let name = format!("{}@{region}", payouts::READER);
    w.store.position(&name).await.unwrap()
}

#[tokio::test]
async fn each_region_pays_the_bonuses_of_its_own_tenants_only() {
    let w = world().await;
    redeem(&w, "acme", "m1", "r1").await;
    redeem(&w, "globex", "g1", "r2").await;
    w.a.campaigns.pay_out().await.unwrap();
    w.b.campaigns.pay_out().await.unwrap();
    assert_eq!(w.a.ledger.balance("m1"), 250);
    assert_eq!(w.a.ledger.balance("g1"), 0, "globex is b's");
    assert_eq!(w.b.ledger.balance("g1"), 250);
    assert_eq!(w.b.ledger.balance("m1"), 0, "acme is a's");
    assert!(position(&w, "a").await > 0 && position(&w, "a").await == position(&w, "b").await);
}

#[tokio::test]
async fn a_region_without_its_lease_or_a_tenant_moving_pays_nothing_until_it_may() {
    let w = world().await;
    redeem(&w, "acme", "m1", "r1").await;
    let globex = ("globex", "b", false);
    read(&w.a.view, 2, &[("acme", "a", false), globex], false, false);
    w.a.campaigns.pay_out().await.unwrap();
    assert_eq!(w.a.ledger.balance("m1"), 0, "fenced");
    assert_eq!(position(&w, "a").await, 0, "nothing passed by");
    read(&w.a.view, 3, &[("acme", "a", true), globex], true, false);
    w.a.campaigns.pay_out().await.unwrap();
    assert_eq!(w.a.ledger.balance("m1"), 0, "moving");
    let moving = position(&w, "a").await;
    read(&w.a.view, 4, &[("acme", "a", false), globex], true, false);
    w.a.campaigns.pay_out().await.unwrap();
    assert_eq!(w.a.ledger.balance("m1"), 250);
    assert!(position(&w, "a").await > moving);
}

#[tokio::test]
async fn a_take_over_pays_what_the_lost_region_left_and_a_failback_pays_nothing_twice() {
    let w = world().await;
    redeem(&w, "acme", "m1", "r1").await;
    w.b.campaigns.pay_out().await.unwrap();
    redeem(&w, "globex", "g1", "r2").await;
    // a passes r2 by (globex is b's), and b is lost before it pays it.
    w.a.campaigns.pay_out().await.unwrap();
    assert_eq!(w.a.ledger.balance("m1"), 250);
    assert_eq!((w.a.ledger.balance("g1"), w.b.ledger.balance("g1")), (0, 0));
    // b's row taken, but its tenants not moved yet: a does not cover for b.
    read(
        &w.a.view,
        2,
        &[("acme", "a", false), ("globex", "b", false)],
        true,
        true,
    );
    w.a.campaigns.pay_out().await.unwrap();
    assert_eq!(w.a.ledger.balance("g1"), 0);
    // The take-over done: a reads again from where b stopped, and pays r2.
    take_b_over(&w);
    w.a.campaigns.pay_out().await.unwrap();
    assert_eq!(w.a.ledger.balance("g1"), 250, "what b left unpaid");
    assert_eq!(
        w.a.ledger.balance("m1"),
        250,
        "acme's read again, paid once"
    );
    assert_eq!(
        position(&w, "b").await,
        position(&w, "a").await,
        "b's kept along"
    );
    // The failback: b gets its row back, globex moves (nobody pays it meanwhile), then is b's.
    let moving = [("acme", "a", false), ("globex", "a", true)];
    read(&w.a.view, 4, &moving, true, false);
    read(&w.b.view, 4, &moving, true, false);
    redeem(&w, "globex", "g1", "r3").await;
    w.a.campaigns.pay_out().await.unwrap();
    w.b.campaigns.pay_out().await.unwrap();
    assert_eq!(w.a.ledger.balance("g1"), 250, "not r3: globex is moving");
    assert_eq!(w.b.ledger.balance("g1"), 0);
    let back = [("acme", "a", false), ("globex", "b", false)];
    read(&w.a.view, 5, &back, true, false);
    read(&w.b.view, 5, &back, true, false);
    w.a.campaigns.pay_out().await.unwrap();
    w.b.campaigns.pay_out().await.unwrap();
    assert_eq!(w.a.ledger.balance("g1"), 250, "a paid r2 only");
    assert_eq!(
        w.b.ledger.balance("g1"),
        250,
        "b paid r3 only, not r2 again"
    );
}

#[tokio::test]
async fn readers_in_two_regions_start_where_the_one_region_reader_stopped() {
    let w = world().await;
    redeem(&w, "acme", "m1", "r1").await;
    let logged = w.store.events_after(0, 1_000).await.unwrap();
    let end = logged.last().unwrap().seq;
    // Paid in one region before `[region]` was set.
    w.store.save_position(payouts::READER, end).await.unwrap();
    w.a.campaigns.pay_out().await.unwrap();
    assert_eq!(w.a.ledger.balance("m1"), 0, "not paid again");
    redeem(&w, "acme", "m1", "r2").await;
    w.a.campaigns.pay_out().await.unwrap();
    assert_eq!(w.a.ledger.balance("m1"), 250);
}

/// The take-over of `b` by `a`: every tenant homed in `a`, which holds `b`'s row.
fn take_b_over(w: &World) {
    let taken = [("acme", "a", false), ("globex", "a", false)];
    read(&w.a.view, 3, &taken, true, true);
}

#[tokio::test]
async fn each_region_announces_its_tenants_lapsing_coupons_and_a_take_over_the_rest() {
    const DAY_MS: i64 = 86_400_000;
    let w = world().await;
    issue(&w, "acme", "m1", "a1").await;
    issue(&w, "globex", "g1", "g1").await;
    w.clock.set(Timestamp(START + 5 * 3_600_000));
    issue(&w, "globex", "g2", "g2").await;
    // Three days' notice of a 30-day coupon: the first two are due, the third not yet.
    w.clock.set(Timestamp(START + 27 * DAY_MS + 2 * 3_600_000));
    assert_eq!(w.a.campaigns.announce_expiring().await.unwrap(), 1);
    assert_eq!(w.b.campaigns.announce_expiring().await.unwrap(), 1);
    assert_eq!(w.a.campaigns.announce_expiring().await.unwrap(), 0, "once");
    // b is lost; the third comes due: a passes it by until it has taken b over.
    w.clock.set(Timestamp(START + 27 * DAY_MS + 6 * 3_600_000));
    assert_eq!(w.a.campaigns.announce_expiring().await.unwrap(), 0);
    take_b_over(&w);
    assert_eq!(w.a.campaigns.announce_expiring().await.unwrap(), 1, "g2's");
    assert_eq!(w.a.campaigns.announce_expiring().await.unwrap(), 0);
    let notices = w.store.events_after(0, 1_000).await.unwrap();
    let notices: Vec<_> = notices
        .iter()
        .filter(|e| e.event.name == "coupon_expiring_soon")
        .map(|e| e.event.member.as_str())
        .collect();
    assert_eq!(notices, ["m1", "g1", "g2"]);
}

fn created(tenant: &'static str, member: &str) -> loyalty_events::Envelope {
    created_as(tenant, member, 1)
}

/// The member service's event for `member` of `tenant` registered, at change-log position
/// `sequence`.
fn created_as(tenant: &'static str, member: &str, sequence: u64) -> loyalty_events::Envelope {
    let origin = loyalty_events::envelope::Origin {
        service: "member",
        tenant,
        member,
    };
    let data = r#"{"source":"api"}"#;
    let id = format!("created-{tenant}-{member}");
    loyalty_events::Envelope::from_stored(origin, "created", id, sequence, START + 1_000, data)
}

/// A running campaign in both tenants paying 10 points to every member who registers.
async fn welcome_everyone(w: &World) {
    for tenant in ["acme", "globex"] {
        let welcome = Campaign {
            id: "WELCOME".into(),
            name: "Welcome".into(),
            audience: Audience::Everyone,
            variants: vec![Variant {
                id: "ten".into(),
                weight: 1,
                reward: Reward::Points { points: 10 },
            }],
            holdout_percent: 0,
            schedule: Schedule {
                starts: "2027-01-15".into(),
                ends: Some("2027-01-20".into()),
                time_zone: "Asia/Shanghai".into(),
            },
            budget: None,
            frequency_cap: None,
            trigger: Some(Trigger::Welcome),
            actions: Actions::default(),
            attribution_days: None,
        };
        support::approve(&w.a.campaigns, &TenantId::parse(tenant).unwrap(), welcome).await;
    }
}

#[tokio::test]
async fn a_trigger_rewards_in_its_tenants_home_and_waits_while_no_region_may() {
    let w = world().await;
    welcome_everyone(&w).await;
    let g1 = created("globex", "g1");
    assert_eq!(
        w.a.campaigns.on_event(&g1).await.unwrap(),
        0,
        "b's to reward"
    );
    assert_eq!(w.b.campaigns.on_event(&g1).await.unwrap(), 1);
    assert_eq!(w.a.ledger.balance("g1"), 0);
    assert_eq!(w.b.ledger.balance("g1"), 10);
    // acme moving: no region rewards, and the event is to be delivered again.
    let moving = [("acme", "a", true), ("globex", "b", false)];
    read(&w.a.view, 3, &moving, true, false);
    let m1 = created("acme", "m1");
    let refused = w.a.campaigns.on_event(&m1).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::Unavailable, "{refused:?}");
    assert_eq!(w.a.ledger.balance("m1"), 0);
}

/// A trigger feed of `region`, on its own bus (each region has its own stream), running
/// until `stop` says so.
fn feed(
    campaigns: Arc<Campaigns>,
    bus: &InProcessBus,
    stop: &tokio::sync::watch::Sender<bool>,
) -> tokio::task::JoinHandle<()> {
    let spec = SubscriptionSpec {
        ack_wait: Duration::from_secs(1),
        ..SubscriptionSpec::new("campaign-triggers-0", "member", triggers::MEMBER_EVENTS)
    };
    let rewarding = Arc::clone(&campaigns);
    let handle: Handler = Arc::new(move |event| {
        let campaigns = Arc::clone(&rewarding);
        Box::pin(async move { campaigns.on_event(&event).await })
    });
    let bus = Arc::new(bus.clone());
    let feed = TriggerFeed::new(campaigns, bus.clone(), bus, spec, handle)
        .with_timing(Duration::from_millis(100), Duration::from_millis(100));
    tokio::spawn(feed.run(stop.subscribe()))
}

/// Each region's bus (its own stream), with a trigger feed running on it.
struct Feeds {
    buses: [InProcessBus; 2],
    a: Arc<Campaigns>,
    stop_a: tokio::sync::watch::Sender<bool>,
    feed_a: tokio::task::JoinHandle<()>,
    stop_b: tokio::sync::watch::Sender<bool>,
    _dirs: [tempfile::TempDir; 2],
}

impl Feeds {
    fn start(a: Campaigns, b: Campaigns) -> Self {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let config = EmbeddedBusConfig::default();
        let buses = (dirs.each_ref()).map(|d| InProcessBus::open(d.path(), &config).unwrap());
        let (a, b) = (Arc::new(a), Arc::new(b));
        let (stop_a, stop_b) = (
            tokio::sync::watch::channel(false).0,
            tokio::sync::watch::channel(false).0,
        );
        let feed_a = feed(Arc::clone(&a), &buses[0], &stop_a);
        // Runs until stop_b says stop.
        drop(feed(b, &buses[1], &stop_b));
        Self {
            buses,
            a,
            stop_a,
            feed_a,
            stop_b,
            _dirs: dirs,
        }
    }
}

/// Waits up to 20 s for `region`'s trigger feed to save `settled` as its progress.
async fn progress_reaches(
    store: &Arc<dyn CampaignRepository>,
    region: &str,
    settled: u64,
    why: &str,
) {
    let name = format!("campaign-triggers-0@{region}");
    for _ in 0..200 {
        if store.position(&name).await.unwrap() == settled {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.position(&name).await.unwrap(), settled, "{why}");
}

/// `events` into both regions' streams.
async fn publish(buses: &[InProcessBus], events: [loyalty_events::Envelope; 2]) {
    for bus in buses {
        bus.prepare("member").await.unwrap();
        bus.publish(events.to_vec()).await.unwrap();
    }
}

/// Waits up to 20 s for `done`.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not within 20 s: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_over_rewards_the_trigger_events_the_lost_region_left() {
    let w = world().await;
    welcome_everyone(&w).await;
    let f = Feeds::start(w.a.campaigns, w.b.campaigns);
    publish(
        &f.buses,
        [created_as("acme", "m1", 1), created_as("globex", "g1", 2)],
    )
    .await;
    eventually("both regions rewarded their own", || {
        w.a.ledger.balance("m1") == 10 && w.b.ledger.balance("g1") == 10
    })
    .await;
    progress_reaches(
        &w.store,
        "a",
        2,
        "a settled both: m1 rewarded, g1 passed by",
    )
    .await;
    // a is lost; m2 registers in acme before b takes it over: b passes it by.
    f.stop_a.send(true).unwrap();
    f.feed_a.await.unwrap();
    publish(
        &f.buses,
        [created_as("acme", "m2", 3), created_as("globex", "g2", 4)],
    )
    .await;
    eventually("b rewarded g2", || w.b.ledger.balance("g2") == 10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.b.ledger.balance("m2"), 0, "acme is a's");
    // The take-over: b reads its stream again from where a had settled, and rewards m2.
    let taken = [("acme", "b", false), ("globex", "b", false)];
    read(&w.b.view, 3, &taken, true, true);
    eventually("b rewarded what a left", || w.b.ledger.balance("m2") == 10).await;
    progress_reaches(&w.store, "a", 4, "a's progress kept along by b").await;
    assert_eq!(w.b.ledger.balance("g2"), 10, "g2 read again, rewarded once");
    assert_eq!(
        w.b.ledger.balance("m1"),
        0,
        "what a had settled is not read again"
    );
    assert_eq!(w.a.ledger.balance("m2"), 0);
    f.stop_b.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_move_rewards_what_the_leaving_region_had_not_read() {
    let w = world().await;
    welcome_everyone(&w).await;
    let f = Feeds::start(w.a.campaigns, w.b.campaigns);
    publish(
        &f.buses,
        [created_as("acme", "m0", 1), created_as("globex", "g0", 2)],
    )
    .await;
    progress_reaches(&w.store, "a", 2, "a settled both").await;
    // a's feed falls behind: m1 registers in acme, which b passes by.
    f.stop_a.send(true).unwrap();
    f.feed_a.await.unwrap();
    publish(
        &f.buses,
        [created_as("acme", "m1", 3), created_as("globex", "g1", 4)],
    )
    .await;
    eventually("b rewarded g1", || w.b.ledger.balance("g1") == 10).await;
    // acme moves to b; a's feed, back, reads m1 only after the move, and passes it by.
    let moving = [("acme", "a", true), ("globex", "b", false)];
    read(&w.a.view, 3, &moving, true, false);
    read(&w.b.view, 3, &moving, true, false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let moved = [("acme", "b", false), ("globex", "b", false)];
    read(&w.a.view, 4, &moved, true, false);
    read(&w.b.view, 4, &moved, true, false);
    let stop_a = tokio::sync::watch::channel(false).0;
    let _feed_a = feed(Arc::clone(&f.a), &f.buses[0], &stop_a);
    eventually("b rewarded what a left", || w.b.ledger.balance("m1") == 10).await;
    progress_reaches(&w.store, "a", 4, "a passed m1 by").await;
    assert_eq!(w.a.ledger.balance("m1"), 0);
    assert_eq!(w.b.ledger.balance("g1"), 10, "g1 read again, rewarded once");
    assert_eq!(
        w.b.ledger.balance("m0"),
        0,
        "what a had settled is not read again"
    );
    stop_a.send(true).unwrap();
    f.stop_b.send(true).unwrap();
}
