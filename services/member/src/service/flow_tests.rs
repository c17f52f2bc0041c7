//! The service end to end under a controlled clock: orders earning at the tier multiplier,
//! tier transitions over months, scoring, segments with bulk tags, and the events of each.

use super::*;
use crate::orders::{LedgerPort, Order};
use crate::store::EmbeddedMemberStore;
use crate::tier::{Approval, Measure, TierDef, TierPolicy};
use async_trait::async_trait;
use loyalty_common::ManualClock;
use loyalty_common::clock::Clock;
use std::sync::Mutex;

/// A ledger that credits one point per 100 minor units times the multiplier, once per order.
#[derive(Default)]
struct FakeLedger {
    earned: Mutex<BTreeMap<String, (i64, u32)>>,
    balances: Mutex<BTreeMap<String, i64>>,
    transfers: Mutex<BTreeSet<String>>,
}

#[async_trait]
impl LedgerPort for FakeLedger {
    async fn earn(
        &self,
        _tenant: &TenantId,
        _member: &MemberId,
        order: &Order,
        multiplier: u32,
    ) -> ServiceResult<Option<i64>> {
        let points = order.total / 100 * i64::from(multiplier) / 10_000;
        let mut earned = self.earned.lock().unwrap();
        let entry = earned
            .entry(order.order_id.clone())
            .or_insert((points, multiplier));
        Ok(Some(entry.0))
    }

    async fn points(&self, _tenant: &TenantId, member: &MemberId) -> ServiceResult<Option<i64>> {
        Ok(Some(
            *self
                .balances
                .lock()
                .unwrap()
                .get(member.as_str())
                .unwrap_or(&0),
        ))
    }

    async fn transfer(
        &self,
        _tenant: &TenantId,
        from: &MemberId,
        to: &MemberId,
        points: i64,
        key: &str,
    ) -> ServiceResult<()> {
        if !self.transfers.lock().unwrap().insert(key.to_string()) {
            return Ok(());
        }
        let mut balances = self.balances.lock().unwrap();
        *balances.entry(from.to_string()).or_default() -= points;
        *balances.entry(to.to_string()).or_default() += points;
        Ok(())
    }
}

struct Flow {
    members: Members,
    clock: Arc<ManualClock>,
    ledger: Arc<FakeLedger>,
    _dir: tempfile::TempDir,
}

const DAY: i64 = 86_400;

fn flow() -> Flow {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedMemberStore::open(dir.path()).unwrap();
    let master = MasterKey::generate().unwrap().0;
    // 2026-01-15, noon UTC.
    let clock = ManualClock::new(Timestamp(1_768_478_400_000));
    let ledger = Arc::new(FakeLedger::default());
    let members = Members::new(Arc::new(store), master, clock.clone()).with_ledger(ledger.clone());
    Flow {
        members,
        clock,
        ledger,
        _dir: dir,
    }
}

fn ids(member: &str) -> (TenantId, MemberId) {
    (
        TenantId::parse("acme").unwrap(),
        MemberId::parse(member).unwrap(),
    )
}

fn tiers(approval: Approval) -> TierPolicy {
    let def = |code: &str, threshold: i64, bp: u32| TierDef {
        code: code.into(),
        name: code.into(),
        threshold,
        earn_multiplier_bp: bp,
        benefits: BTreeMap::new(),
    };
    TierPolicy {
        measure: Measure::Spend12m,
        tiers: vec![
            def("silver", 500_000, 12_000),
            def("gold", 1_000_000, 15_000),
            def("diamond", 3_000_000, 20_000),
        ],
        period_months: 12,
        grace_days: 30,
        approval,
    }
}

fn order(id: &str, total: i64) -> OrderInput {
    OrderInput {
        order_id: id.into(),
        total,
        ..OrderInput::default()
    }
}

impl Flow {
    async fn register(&self, member: &str) {
        let (tenant, member) = ids(member);
        self.members
            .register(&tenant, &member, ProfileInput::default())
            .await
            .unwrap();
    }

    async fn facts(&self, member: &str) -> MemberFacts {
        let (tenant, member) = ids(member);
        self.members.facts(&tenant, &member).await.unwrap()
    }

    async fn event_names(&self) -> Vec<String> {
        let logged = self
            .members
            .repository()
            .events_after(0, 10_000)
            .await
            .unwrap();
        logged.into_iter().map(|l| l.event.name).collect()
    }
}

#[tokio::test]
async fn orders_count_towards_spend_earn_at_the_tier_multiplier_and_upgrade_at_once() {
    let f = flow();
    let (acme, m1) = ids("m1");
    f.members
        .put_tier_policy(&acme, &tiers(Approval::None))
        .await
        .unwrap();
    f.register("m1").await;

    let first = f
        .members
        .record_order(&acme, &m1, order("POS-1", 600_000))
        .await
        .unwrap();
    assert_eq!(first.order.points, Some(6_000), "earned at 1x: no tier yet");
    assert_eq!(f.facts("m1").await.tier.as_deref(), Some("silver"));
    let second = f
        .members
        .record_order(&acme, &m1, order("POS-2", 100_000))
        .await
        .unwrap();
    assert_eq!(second.order.points, Some(1_200), "silver earns 1.2x");

    let again = f
        .members
        .record_order(&acme, &m1, order("POS-2", 100_000))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.order.points, Some(1_200));
    let err = f
        .members
        .record_order(&acme, &m1, order("POS-2", 999))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::OrderConflict);

    let mut refund = order("POS-3", -100_000);
    refund.refund_of = Some("POS-2".into());
    f.members.record_order(&acme, &m1, refund).await.unwrap();
    let facts = f.facts("m1").await;
    assert_eq!(facts.spend_12m(f.clock.now()), 600_000);
    assert_eq!(facts.lifetime_orders, 2, "a refund is not an order");
    let (history, next) = f.members.orders(&acme, &m1, None, 2).await.unwrap();
    assert_eq!(history.len(), 2);
    let (rest, _) = f
        .members
        .orders(&acme, &m1, next.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(
        f.ledger.earned.lock().unwrap().len(),
        2,
        "each order earned once"
    );
    let names = f.event_names().await;
    assert_eq!(
        names,
        [
            "created",
            "order_recorded",
            "tier_changed",
            "order_recorded",
            "order_recorded"
        ]
    );
}

#[tokio::test]
async fn a_tier_is_kept_for_its_period_then_lost_after_grace() {
    let f = flow();
    let (acme, m1) = ids("m1");
    f.members
        .put_tier_policy(&acme, &tiers(Approval::None))
        .await
        .unwrap();
    f.register("m1").await;
    f.members
        .record_order(&acme, &m1, order("POS-1", 1_200_000))
        .await
        .unwrap();
    assert_eq!(f.facts("m1").await.tier.as_deref(), Some("gold"));

    // Six months on, the review changes nothing: the period runs a year.
    f.clock.advance_secs(182 * DAY);
    let run = f.members.review_tiers(&acme).await.unwrap();
    assert_eq!((run.evaluated, run.changed), (1, 0));
    // Past the review, the spend has rolled out of the window: grace starts.
    f.clock.advance_secs(200 * DAY);
    f.members.review_tiers(&acme).await.unwrap();
    let state = f.facts("m1").await.tier_state.unwrap();
    assert_eq!(state.tier.as_deref(), Some("gold"));
    assert!(state.grace_until.is_some());
    f.clock.advance_secs(31 * DAY);
    f.members.review_tiers(&acme).await.unwrap();
    assert_eq!(f.facts("m1").await.tier, None);
    let names = f.event_names().await;
    assert!(names.ends_with(&["tier_grace_started".into(), "tier_changed".into()]));
}

#[tokio::test]
async fn an_upgrade_that_needs_approval_waits_for_it() {
    let f = flow();
    let (acme, m1) = ids("m1");
    f.members
        .put_tier_policy(&acme, &tiers(Approval::Upgrades))
        .await
        .unwrap();
    f.register("m1").await;
    f.members
        .record_order(&acme, &m1, order("POS-1", 3_500_000))
        .await
        .unwrap();
    assert_eq!(f.facts("m1").await.tier, None, "waiting for approval");
    let pending = f
        .members
        .pending_tier_changes(&acme, None, 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].1.to.as_deref(), Some("diamond"));
    f.members
        .decide_tier_change(&acme, &m1, true)
        .await
        .unwrap();
    assert_eq!(f.facts("m1").await.tier.as_deref(), Some("diamond"));
    let err = f
        .members
        .decide_tier_change(&acme, &m1, false)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NoPendingTierChange);
}

#[tokio::test]
async fn scoring_moves_members_through_their_lifecycle() {
    let f = flow();
    let (acme, m1) = ids("m1");
    f.register("m1").await;
    f.register("m2").await;
    f.members
        .record_order(&acme, &m1, order("POS-1", 50_000))
        .await
        .unwrap();
    let run = f.members.score_members(&acme).await.unwrap();
    assert_eq!(run.scored, 2);
    assert!(f.facts("m1").await.rfm.is_some());
    assert_eq!(f.facts("m2").await.rfm, None, "never ordered");
    f.clock.advance_secs(400 * DAY);
    f.members.score_members(&acme).await.unwrap();
    assert_eq!(
        f.facts("m1").await.lifecycle,
        crate::facts::Lifecycle::Dormant
    );
    let again = f.members.score_members(&acme).await.unwrap();
    assert_eq!(again.changed, 0, "nothing changed, nothing written");
}

#[tokio::test]
async fn segments_select_page_and_drive_bulk_tags() {
    let f = flow();
    let acme = ids("x").0;
    for n in 0..30 {
        let member = format!("m{n:02}");
        f.register(&member).await;
        if n % 3 == 0 {
            let order = order(&format!("POS-{n}"), 150_000);
            f.members
                .record_order(&acme, &ids(&member).1, order)
                .await
                .unwrap();
        }
    }
    let input = SegmentInput {
        name: "Big spenders".into(),
        query: serde_json::json!({"spend_12m": {"gte": 100000}}),
        refresh_minutes: Some(60),
    };
    f.members
        .put_segment(&acme, "big", input.clone())
        .await
        .unwrap();
    let err = f
        .members
        .segment_members(&acme, "big", None, 10)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::SegmentNotRefreshed);
    assert_eq!(f.members.refresh_due_segments(&acme).await.unwrap(), 1);
    assert_eq!(
        f.members.refresh_due_segments(&acme).await.unwrap(),
        0,
        "not due"
    );
    let refresh = f
        .members
        .segment(&acme, "big")
        .await
        .unwrap()
        .last_refresh
        .unwrap();
    assert_eq!((refresh.count, refresh.scanned), (10, 30));
    let (page, next) = f
        .members
        .segment_members(&acme, "big", None, 6)
        .await
        .unwrap();
    assert_eq!(page.first().map(String::as_str), Some("m00"));
    let (rest, end) = f
        .members
        .segment_members(&acme, "big", next.as_deref(), 6)
        .await
        .unwrap();
    assert_eq!((rest.len(), end), (4, None));

    let everyone = f.members.all_segment_members(&acme, "big").await.unwrap();
    let tagged = f
        .members
        .tag_many(&acme, &everyone, &["big-spender".into()], &[])
        .await
        .unwrap();
    assert_eq!(tagged.changed, 10);
    let by_tag = SegmentInput {
        query: serde_json::json!({"all": [{"tag": "big-spender"}, {"not": {"tag": "vip"}}]}),
        ..input
    };
    f.members.put_segment(&acme, "big2", by_tag).await.unwrap();
    assert_eq!(
        f.members
            .refresh_segment(&acme, "big2")
            .await
            .unwrap()
            .count,
        10
    );
    let bad = SegmentInput {
        name: "x".into(),
        query: serde_json::json!({"spend": 1}),
        refresh_minutes: None,
    };
    let err = f.members.put_segment(&acme, "bad", bad).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    f.members.delete_segment(&acme, "big").await.unwrap();
    let err = f.members.segment(&acme, "big").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::SegmentNotFound);
}

#[tokio::test]
async fn an_erased_member_leaves_segments_and_its_status_shows_the_deadline() {
    let f = flow();
    let (acme, m1) = ids("m1");
    f.register("m1").await;
    let status = f.members.erasure_status(&acme, &m1).await.unwrap();
    assert_eq!(status.state, ErasureState::None);
    let done = f.members.erase(&acme, &m1).await.unwrap();
    assert_eq!(done.state, ErasureState::Completed);
    let requested = done.requested_at.unwrap();
    assert_eq!(done.due_by, Some(requested.plus_days(30)));
    let input = SegmentInput {
        name: "all".into(),
        query: serde_json::json!({"registered": {"after": "2000-01-01"}}),
        refresh_minutes: None,
    };
    f.members.put_segment(&acme, "all", input).await.unwrap();
    assert_eq!(
        f.members.refresh_segment(&acme, "all").await.unwrap().count,
        0
    );
    let err = f
        .members
        .record_order(&acme, &m1, order("POS-9", 100))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::MemberErased);
}

#[tokio::test]
async fn a_merge_moves_everything_and_its_record_undoes_it() {
    let f = flow();
    let (acme, keep) = ids("keep");
    let dup = ids("dup").1;
    let mut input = ProfileInput::default();
    input.personal.phone = Some("13800000001".into());
    input.tags.insert("vip".into());
    f.members.register(&acme, &dup, input).await.unwrap();
    f.register("keep").await;
    f.members
        .record_order(&acme, &dup, order("D-1", 50_000))
        .await
        .unwrap();
    f.members
        .record_order(&acme, &keep, order("K-1", 20_000))
        .await
        .unwrap();
    f.ledger.balances.lock().unwrap().insert("dup".into(), 700);

    let record = f.members.merge(&acme, &keep, &dup).await.unwrap();
    assert_eq!(record.tags_added, ["vip"]);
    assert_eq!(record.orders_moved, ["D-1"]);
    assert_eq!(record.points_moved, 700);
    let kept = f.facts("keep").await;
    assert_eq!((kept.lifetime_spend, kept.lifetime_orders), (70_000, 2));
    assert!(kept.tags.contains("vip"));
    let (orders, _) = f.members.orders(&acme, &keep, None, 10).await.unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(f.ledger.balances.lock().unwrap()["keep"], 700);
    let err = f
        .members
        .profile(&acme, &dup, View::Masked)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::MemberMerged);
    assert!(err.message.contains("keep"), "{}", err.message);
    let phone = f
        .members
        .find(&acme, IndexKind::Phone, "13800000001")
        .await
        .unwrap();
    assert_eq!(phone, None, "the duplicate's phone is released");
    let err = f.members.merge(&acme, &keep, &dup).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::MemberMerged, "merged once only");

    // A later order of the survivor stays with it when the merge is reversed.
    f.members
        .record_order(&acme, &keep, order("K-2", 5_000))
        .await
        .unwrap();
    let reversed = f.members.reverse_merge(&acme, &record.id).await.unwrap();
    assert_eq!(reversed.state, MergeState::Reversed);
    let again = f.members.reverse_merge(&acme, &record.id).await.unwrap();
    assert_eq!(again, reversed, "reversing twice changes nothing");
    let kept = f.facts("keep").await;
    assert_eq!((kept.lifetime_spend, kept.lifetime_orders), (25_000, 2));
    assert!(!kept.tags.contains("vip"));
    let back = f.facts("dup").await;
    assert_eq!((back.lifetime_spend, back.lifetime_orders), (50_000, 1));
    assert!(back.last_order_at.is_some());
    let (orders, _) = f.members.orders(&acme, &dup, None, 10).await.unwrap();
    assert_eq!(orders[0].order_id, "D-1");
    assert_eq!(f.ledger.balances.lock().unwrap()["dup"], 700);
    let phone = f
        .members
        .find(&acme, IndexKind::Phone, "13800000001")
        .await
        .unwrap();
    assert_eq!(phone.as_deref(), Some("dup"));
    f.members.profile(&acme, &dup, View::Masked).await.unwrap();
    let names = f.event_names().await;
    assert!(names.contains(&"merged".to_string()) && names.contains(&"restored".to_string()));
}

#[tokio::test]
async fn a_merge_or_reversal_that_cannot_go_through_moves_no_points() {
    let f = flow();
    let (acme, keep) = ids("keep");
    let dup = ids("dup").1;
    f.register("dup").await;
    f.ledger.balances.lock().unwrap().insert("dup".into(), 300);
    let ghost = ids("ghost").1;
    let err = f.members.merge(&acme, &ghost, &dup).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::MemberNotFound);
    assert_eq!(
        f.ledger.balances.lock().unwrap()["dup"],
        300,
        "nothing moved"
    );

    f.register("keep").await;
    let record = f.members.merge(&acme, &keep, &dup).await.unwrap();
    assert_eq!(record.points_moved, 300);
    f.members.erase(&acme, &dup).await.unwrap();
    let err = f
        .members
        .reverse_merge(&acme, &record.id)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::MemberErased);
    assert_eq!(
        f.ledger.balances.lock().unwrap()["keep"],
        300,
        "nothing moved back"
    );
}

#[tokio::test]
async fn a_refund_gives_back_at_most_what_was_paid() {
    let f = flow();
    let (acme, m1) = ids("m1");
    f.register("m1").await;
    f.members
        .record_order(&acme, &m1, order("POS-1", 1_000))
        .await
        .unwrap();
    let mut too_much = order("POS-2", -1_001);
    too_much.refund_of = Some("POS-1".into());
    let err = f
        .members
        .record_order(&acme, &m1, too_much)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    let mut overflow = order("POS-3", i64::MIN);
    overflow.refund_of = Some("POS-1".into());
    let err = f
        .members
        .record_order(&acme, &m1, overflow)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
}
