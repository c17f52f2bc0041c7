//! The points mall's orders against the real ledger (in process, on its embedded store):
//! placing holds the points and the unit, confirming takes both, a pick-up is handed over
//! against its one-time code, and failing, lapsing, cancelling or returning gives both
//! back once. 500 members racing for 100 units place exactly 100 orders and hold points
//! for those only. Sagas cut short (the ledger's reply lost after it held or took the
//! points, the service restarted) end with both held or neither.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_campaign::mall::order::{Order, OrderState};
use loyalty_campaign::mall::{
    CENTRAL, Fulfilment, ItemKind, Localized, MallItem, MemberLimit, Period, Price,
};
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::service::mall::OrderRequest;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::{ManualClock, Timestamp};
use loyalty_ledger::client::LedgerClient;
use std::sync::Arc;

mod support;
use support::lossy::LossyLedger;

const START: i64 = 1_800_000_000_000;
const PRICE: i64 = 300;

struct World {
    campaigns: Arc<Campaigns>,
    store: Arc<dyn CampaignRepository>,
    ledger: Arc<LossyLedger>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl World {
    async fn new() -> Self {
        let (campaign_dir, ledger_dir) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let clock = ManualClock::new(Timestamp(START));
        let ledger = Arc::new(LossyLedger::on(ledger_dir.path(), &clock));
        let store: Arc<dyn CampaignRepository> =
            Arc::new(EmbeddedCampaignStore::open(campaign_dir.path()).unwrap());
        let world = Self {
            campaigns: Arc::new(Self::service(&store, &ledger, &clock)),
            store,
            ledger,
            clock,
            tenant: TenantId::parse("acme").unwrap(),
            _dirs: (campaign_dir, ledger_dir),
        };
        world.save(gift("TEA", 2)).await;
        world
    }

    fn service(
        store: &Arc<dyn CampaignRepository>,
        ledger: &Arc<LossyLedger>,
        clock: &Arc<ManualClock>,
    ) -> Campaigns {
        Campaigns::with_clock(Arc::clone(store), None, clock.clone())
            .with_ledger(Arc::clone(ledger) as Arc<dyn LedgerClient>)
    }

    /// The service started again on the same store and ledger, as after a crash.
    fn restarted(&self) -> Campaigns {
        Self::service(&self.store, &self.ledger, &self.clock)
    }

    async fn save(&self, item: MallItem) {
        let version = match self.campaigns.mall_item(&self.tenant, &item.id).await {
            Ok(state) => state.version,
            Err(_) => 0,
        };
        self.campaigns
            .put_mall_item(&self.tenant, item, version)
            .await
            .unwrap();
    }

    async fn place(&self, member: &str, id: &str) -> ServiceResult<Order> {
        let pickup = OrderRequest {
            store: Some("s01".into()),
            brand: None,
            fulfilment: Some(Fulfilment::Pickup),
            confirm: false,
        };
        let m = MemberId::parse(member).unwrap();
        self.campaigns
            .place_order(&self.tenant, ("TEA", id), &m, pickup)
            .await
    }

    async fn taken(&self) -> u64 {
        let state = self.campaigns.mall_item(&self.tenant, "TEA").await.unwrap();
        state.taken(CENTRAL)
    }

    /// Places `id` for `member`, confirmed at once, for delivery.
    async fn place_at_once(&self, member: &str, id: &str) -> ServiceResult<Order> {
        let at_once = OrderRequest {
            fulfilment: Some(Fulfilment::Delivery),
            confirm: true,
            ..OrderRequest::default()
        };
        let m = MemberId::parse(member).unwrap();
        self.campaigns
            .place_order(&self.tenant, ("TEA", id), &m, at_once)
            .await
    }

    /// The names of the events of order `id`, in the order written.
    async fn events_of(&self, id: &str) -> Vec<String> {
        let events = self.store.events_after(0, 100_000).await.unwrap();
        events
            .into_iter()
            .filter(|e| e.event.data.contains(&format!("\"order\":\"{id}\"")))
            .map(|e| e.event.name)
            .collect()
    }

    async fn state(&self, id: &str) -> OrderState {
        self.campaigns
            .mall_order(&self.tenant, "TEA", id)
            .await
            .unwrap()
            .state
    }
}

fn gift(id: &str, units: u64) -> MallItem {
    MallItem {
        id: id.into(),
        kind: ItemKind::Gift {
            sku: "TEA-1".into(),
        },
        name: Localized {
            zh: "茶具".into(),
            en: "Tea set".into(),
        },
        description: Localized::default(),
        category: "home".into(),
        image: None,
        price: Price {
            points: PRICE,
            cash: 0,
        },
        tier_prices: Default::default(),
        tiers: Vec::new(),
        brands: Vec::new(),
        stores: Vec::new(),
        available_from_ms: None,
        available_until_ms: None,
        stock: [(CENTRAL.to_string(), units)].into(),
        limit: Some(MemberLimit {
            count: 1,
            period: Period::Month,
        }),
        fulfilment: vec![Fulfilment::Pickup, Fulfilment::Delivery],
        time_zone: "Asia/Shanghai".into(),
    }
}

#[tokio::test]
async fn an_order_holds_then_takes_points_and_is_picked_up_with_its_code_and_returned_once() {
    let w = World::new().await;
    w.ledger.give("m1", 1_000).await;
    let placed = w.place("m1", "o1").await.unwrap();
    assert_eq!(placed.state, OrderState::Placed);
    assert_eq!(w.ledger.points("m1").await, (700, 300), "held");
    assert_eq!(w.taken().await, 1);
    assert_eq!(
        w.place("m1", "o1").await.unwrap(),
        placed,
        "the same id answers"
    );
    let again = w.place("m1", "o2").await.unwrap_err();
    assert_eq!(again.code, ErrorCode::MallLimitReached, "one a month");

    let c = &w.campaigns;
    let confirmed = c.confirm_order(&w.tenant, "TEA", "o1").await.unwrap();
    assert_eq!(confirmed.state, OrderState::Confirmed);
    assert_eq!(w.ledger.points("m1").await, (700, 0), "taken");
    let (ready, code) = c.ready_order(&w.tenant, "TEA", "o1").await.unwrap();
    assert_eq!(ready.state, OrderState::Ready);
    assert_eq!(code.len(), 8);
    let wrong = c
        .fulfil_order(&w.tenant, "TEA", "o1", Some("00000000x"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code, ErrorCode::PickupCodeMismatch);
    let fulfilled = c
        .fulfil_order(&w.tenant, "TEA", "o1", Some(&code))
        .await
        .unwrap();
    assert_eq!(fulfilled.state, OrderState::Fulfilled);
    let cancel = c.cancel_order(&w.tenant, "TEA", "o1").await.unwrap_err();
    assert_eq!(
        cancel.code,
        ErrorCode::MallOrderNotActive,
        "{}",
        cancel.message
    );

    let returned = c.return_order(&w.tenant, "TEA", "o1").await.unwrap();
    assert_eq!(returned.state, OrderState::Returned);
    assert_eq!(
        c.return_order(&w.tenant, "TEA", "o1").await.unwrap(),
        returned
    );
    assert_eq!(c.refund_orders().await.unwrap(), 1);
    assert_eq!(c.refund_orders().await.unwrap(), 0, "once");
    assert_eq!(
        w.ledger.points("m1").await,
        (1_000, 0),
        "the points are back"
    );
    assert_eq!(w.taken().await, 0, "the unit is back");
}

#[tokio::test]
async fn an_order_placed_and_confirmed_in_one_call_takes_the_points_once() {
    let w = World::new().await;
    w.ledger.give("m1", 1_000).await;
    let m1 = MemberId::parse("m1").unwrap();
    let at_once = OrderRequest {
        fulfilment: Some(Fulfilment::Delivery),
        confirm: true,
        ..OrderRequest::default()
    };
    let order = w
        .campaigns
        .place_order(&w.tenant, ("TEA", "o1"), &m1, at_once.clone())
        .await
        .unwrap();
    assert_eq!(
        order.state,
        OrderState::Confirmed,
        "a gift: confirmed, to deliver"
    );
    assert!(order.paid_entry.is_some());
    assert_eq!(
        w.ledger.points("m1").await,
        (700, 0),
        "taken, nothing left held"
    );
    let again = w
        .campaigns
        .place_order(&w.tenant, ("TEA", "o1"), &m1, at_once)
        .await
        .unwrap();
    assert_eq!(again, order, "the same id answers with the order");
    assert_eq!(w.ledger.points("m1").await, (700, 0), "once");
    assert_eq!(w.taken().await, 1);
}

#[tokio::test]
async fn an_order_confirmed_at_once_tells_every_state_it_passes() {
    let w = World::new().await;
    w.ledger.give("m1", 1_000).await;
    w.ledger.give("m2", 1_000).await;
    let order = w.place_at_once("m1", "o1").await.unwrap();
    assert_eq!(order.state, OrderState::Confirmed);
    assert!(
        order.hold_id.is_some(),
        "the hold its points were taken from"
    );
    assert_eq!(
        w.events_of("o1").await,
        [
            "mall_order_pending",
            "mall_order_placed",
            "mall_order_confirmed"
        ],
        "the events two calls give"
    );
    w.place("m2", "o2").await.unwrap();
    w.campaigns
        .confirm_order(&w.tenant, "TEA", "o2")
        .await
        .unwrap();
    assert_eq!(w.events_of("o2").await, w.events_of("o1").await);
}

#[tokio::test]
async fn an_order_confirmed_at_once_cut_short_after_the_points_were_taken_is_finished_by_a_retry_once()
 {
    let w = World::new().await;
    w.ledger.give("m1", 1_000).await;
    w.ledger.lose_next("redeem");
    let cut = w.place_at_once("m1", "o1").await;
    assert_eq!(cut.unwrap_err().code, ErrorCode::Unavailable);
    assert_eq!(w.state("o1").await, OrderState::Pending);
    assert_eq!(
        w.ledger.points("m1").await,
        (700, 0),
        "taken, but the order does not know"
    );

    let order = w.place_at_once("m1", "o1").await.unwrap();
    assert_eq!(order.state, OrderState::Confirmed);
    assert!(order.paid_entry.is_some());
    assert_eq!(w.ledger.points("m1").await, (700, 0), "taken once");
    assert_eq!(w.taken().await, 1);
}

#[tokio::test]
async fn an_order_confirmed_at_once_cut_short_after_the_points_were_taken_is_undone_by_the_sweep() {
    let w = World::new().await;
    w.ledger.give("m1", 1_000).await;
    w.ledger.lose_next("redeem");
    let cut = w.place_at_once("m1", "o1").await;
    assert_eq!(cut.unwrap_err().code, ErrorCode::Unavailable);

    w.clock.advance_secs(16 * 60);
    let restarted = w.restarted();
    assert_eq!(restarted.sweep_orders().await.unwrap(), 1);
    restarted.refund_orders().await.unwrap();
    assert_eq!(w.state("o1").await, OrderState::Failed);
    assert_eq!(
        w.ledger.points("m1").await,
        (1_000, 0),
        "what was taken found by the hold's key and reversed"
    );
    assert_eq!(w.taken().await, 0, "the unit back in stock");
    assert_eq!(restarted.refund_orders().await.unwrap(), 0, "once");
    assert_eq!(w.ledger.points("m1").await, (1_000, 0));
}

#[tokio::test]
async fn a_retry_that_asks_otherwise_than_the_first_call_finds_what_the_ledger_did() {
    let w = World::new().await;
    w.ledger.give("m1", 1_000).await;
    // Taken at once, the reply lost; retried without confirming: confirmed all the same.
    w.ledger.lose_next("redeem");
    assert!(w.place_at_once("m1", "taken").await.is_err());
    let taken = w.place("m1", "taken").await.unwrap();
    assert_eq!(taken.state, OrderState::Confirmed, "the points were taken");
    assert!(taken.paid_entry.is_some());
    assert_eq!(w.ledger.points("m1").await, (700, 0));
    // Held, the reply lost; retried confirming at once: the hold is captured.
    w.ledger.give("m2", 1_000).await;
    w.ledger.lose_next("redeem");
    assert!(w.place("m2", "held").await.is_err());
    assert_eq!(w.ledger.points("m2").await, (700, 300));
    let held = w.place_at_once("m2", "held").await.unwrap();
    assert_eq!(held.state, OrderState::Confirmed);
    assert_eq!(w.ledger.points("m2").await, (700, 0), "taken once");
    assert_eq!(w.taken().await, 2);
}

#[tokio::test]
async fn stored_value_is_credited_once_from_the_fulfilled_event() {
    let w = World::new().await;
    let mut card = gift("CARD", 5);
    card.kind = ItemKind::StoredValue { amount: 2_000 };
    card.fulfilment = Vec::new();
    w.save(card).await;
    w.ledger.give("m1", 1_000).await;
    let (c, m1) = (&w.campaigns, MemberId::parse("m1").unwrap());
    let placed = c
        .place_order(&w.tenant, ("CARD", "v1"), &m1, OrderRequest::default())
        .await
        .unwrap();
    assert_eq!(placed.state, OrderState::Placed);
    let fulfilled = c.confirm_order(&w.tenant, "CARD", "v1").await.unwrap();
    assert_eq!(fulfilled.state, OrderState::Fulfilled);
    assert_eq!(fulfilled.credit, Some(2_000));
    assert_eq!(w.ledger.points("m1").await, (700, 0), "the points taken");
    assert_eq!(
        w.ledger.bonus("m1").await,
        0,
        "credited by the reader, not the call"
    );
    assert_eq!(c.refund_orders().await.unwrap(), 1);
    assert_eq!(c.refund_orders().await.unwrap(), 0, "once");
    assert_eq!(w.ledger.bonus("m1").await, 2_000);
    assert_eq!(
        c.confirm_order(&w.tenant, "CARD", "v1").await.unwrap(),
        fulfilled,
        "confirming again answers with the order"
    );
    assert_eq!(w.ledger.bonus("m1").await, 2_000);
}

#[tokio::test]
async fn cancelling_gives_a_held_or_taken_order_back_and_a_poor_member_gets_nothing_held() {
    let w = World::new().await;
    w.ledger.give("m1", 1_000).await;
    w.ledger.give("m2", 1_000).await;
    w.ledger.give("poor", 100).await;
    let c = &w.campaigns;
    w.place("m1", "held").await.unwrap();
    w.place("m2", "taken").await.unwrap();
    c.confirm_order(&w.tenant, "TEA", "taken").await.unwrap();
    assert_eq!(w.taken().await, 2);
    let sold_out = w.place("poor", "none").await.unwrap_err();
    assert_eq!(sold_out.code, ErrorCode::SoldOut);
    for id in ["held", "taken"] {
        let cancelled = c.cancel_order(&w.tenant, "TEA", id).await.unwrap();
        assert_eq!(cancelled.state, OrderState::Cancelled);
    }
    c.refund_orders().await.unwrap();
    assert_eq!(w.ledger.points("m1").await, (1_000, 0));
    assert_eq!(w.ledger.points("m2").await, (1_000, 0));
    let short = w.place("poor", "short").await.unwrap_err();
    assert_eq!(short.code, ErrorCode::InsufficientPoints);
    assert_eq!(w.state("short").await, OrderState::Failed);
    assert_eq!(w.taken().await, 0, "the unit went back");
    assert_eq!(w.ledger.points("poor").await, (100, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_members_order_a_hundred_units_and_only_the_placed_hold_points() {
    let w = Arc::new(World::new().await);
    w.save(gift("TEA", 100)).await;
    for n in 0..500 {
        w.ledger.give(&format!("m{n}"), 1_000).await;
    }
    let tasks: Vec<_> = (0..500)
        .map(|n| {
            let w = Arc::clone(&w);
            tokio::spawn(async move { w.place(&format!("m{n}"), &format!("o{n}")).await })
        })
        .collect();
    let mut placed = Vec::new();
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(order) => {
                assert_eq!(order.state, OrderState::Placed);
                placed.push(n);
            }
            Err(e) => assert_eq!(e.code, ErrorCode::SoldOut, "{}", e.message),
        }
    }
    assert_eq!(placed.len(), 100, "exactly the stock");
    assert_eq!(w.taken().await, 100);
    for n in 0..500 {
        let want = if placed.contains(&n) {
            (700, 300)
        } else {
            (1_000, 0)
        };
        assert_eq!(w.ledger.points(&format!("m{n}")).await, want, "m{n}");
    }
}

#[tokio::test]
async fn a_saga_cut_short_after_the_hold_is_undone_after_a_restart() {
    let w = World::new().await;
    w.ledger.give("m1", 1_000).await;
    w.ledger.lose_next("redeem");
    let lost = w.place("m1", "o1").await.unwrap_err();
    assert_eq!(lost.code, ErrorCode::Unavailable);
    assert_eq!(w.state("o1").await, OrderState::Pending);
    assert_eq!(
        (w.ledger.points("m1").await, w.taken().await),
        ((700, 300), 1),
        "both held"
    );

    let restarted = w.restarted();
    assert_eq!(
        restarted.sweep_orders().await.unwrap(),
        0,
        "within the grace time"
    );
    w.clock.advance_secs(6 * 60);
    assert_eq!(restarted.sweep_orders().await.unwrap(), 1);
    restarted.refund_orders().await.unwrap();
    assert_eq!(w.state("o1").await, OrderState::Failed);
    assert_eq!(
        (w.ledger.points("m1").await, w.taken().await),
        ((1_000, 0), 0),
        "neither"
    );
}

#[tokio::test]
async fn a_retry_finishes_a_saga_cut_short_and_the_sweep_undoes_one_never_held() {
    let w = World::new().await;
    w.ledger.give("m1", 1_000).await;
    w.ledger.give("m2", 1_000).await;
    w.ledger.lose_next("redeem");
    w.place("m1", "o1").await.unwrap_err();
    let retried = w.place("m1", "o1").await.unwrap();
    assert_eq!(
        retried.state,
        OrderState::Placed,
        "the retry took the saga on"
    );
    assert_eq!(w.ledger.points("m1").await, (700, 300), "held once");

    // The ledger refuses to answer before anything was held: the order waits, then fails.
    w.ledger.down_once();
    w.place("m2", "o2").await.unwrap_err();
    assert_eq!(w.state("o2").await, OrderState::Pending);
    w.clock.advance_secs(6 * 60);
    w.campaigns.sweep_orders().await.unwrap();
    w.campaigns.refund_orders().await.unwrap();
    assert_eq!(w.state("o2").await, OrderState::Failed);
    assert_eq!(w.ledger.points("m2").await, (1_000, 0));
    assert_eq!(w.taken().await, 1, "o1's unit only");
}

#[tokio::test]
async fn an_order_not_confirmed_in_time_lapses_even_when_the_capture_was_cut_short() {
    let w = World::new().await;
    w.ledger.give("m1", 1_000).await;
    w.ledger.give("m2", 1_000).await;
    w.place("m1", "idle").await.unwrap();
    w.place("m2", "cut").await.unwrap();
    w.ledger.lose_next("capture");
    let cut = w.campaigns.confirm_order(&w.tenant, "TEA", "cut").await;
    assert_eq!(cut.unwrap_err().code, ErrorCode::Unavailable);
    assert_eq!(
        w.ledger.points("m2").await,
        (700, 0),
        "taken, but the order does not know"
    );

    w.clock.advance_secs(16 * 60);
    let restarted = w.restarted();
    assert_eq!(restarted.sweep_orders().await.unwrap(), 2);
    restarted.refund_orders().await.unwrap();
    for (id, member) in [("idle", "m1"), ("cut", "m2")] {
        assert_eq!(w.state(id).await, OrderState::Lapsed);
        assert_eq!(w.ledger.points(member).await, (1_000, 0), "{id}");
    }
    assert_eq!(w.taken().await, 0);
    let late = w.campaigns.confirm_order(&w.tenant, "TEA", "idle").await;
    assert_eq!(late.unwrap_err().code, ErrorCode::MallOrderNotActive);
}
