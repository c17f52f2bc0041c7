//! What a member write that died half-way leaves on ScyllaDB, and how the next write gets
//! past it (on the CQL cluster, `SCYLLA_NODES`). An order's id is claimed (`member_orders`)
//! before the member's batch lists it; a process killed between the two leaves a claim that
//! no member lists. Such a claim made moments ago is a write in flight (the new write is
//! Stale: read again and retry); one older than the claim grace (30 s) is taken over. The
//! embedded store has no such state: its writes are one transaction.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_common::Timestamp;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_member::facts::MemberFacts;
use loyalty_member::orders::Order;
use loyalty_member::store::cql::ScyllaMemberStore;
use loyalty_member::store::{MemberRepository, MemberWrite, Versioned, Written};
use loyalty_scylla::test_cluster::migrated_keyspace;
use scylla::value::CqlTimestamp;
use std::sync::Arc;

fn order(member: &str, id: &str) -> Order {
    Order {
        order_id: id.into(),
        member: member.into(),
        at: Timestamp(1_800_000_000_000),
        at_given: true,
        total: 1_000,
        lines: vec![],
        store: None,
        channel: None,
        refund_of: None,
        points: Some(10),
        recorded_at: Timestamp(1_800_000_000_000),
    }
}

fn facts_with_order(tenant: &str, member: &str, version: u64, order_id: &str) -> MemberWrite {
    MemberWrite {
        tenant: tenant.into(),
        member: member.into(),
        facts: Some(Versioned {
            version,
            value: MemberFacts::new(member, Timestamp(1_800_000_000_000)),
        }),
        order: Some(order(member, order_id)),
        ..MemberWrite::default()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn ann() -> MemberId {
    MemberId::parse("ann").unwrap()
}

#[tokio::test]
async fn an_order_claim_left_by_a_dead_write_is_waited_for_then_taken_over() {
    let Some((session, config)) =
        migrated_keyspace("claims", "member", loyalty_member::schema::MIGRATIONS).await
    else {
        return;
    };
    let keyspace = config.keyspace("member");
    let repo = ScyllaMemberStore::prepare(Arc::clone(&session), &keyspace)
        .await
        .unwrap();

    // Two claims no member lists, as a process killed between claim and batch leaves them:
    // one just made, one made a minute ago.
    let (fresh, stale) = ("order-fresh", "order-stale");
    for (id, age_ms) in [(fresh, 0), (stale, 60_000)] {
        let body = loyalty_scylla::body::encode(&order("ghost", id)).unwrap();
        session
            .session
            .query_unpaged(
                format!(
                    "INSERT INTO {keyspace}.member_orders (tenant, order_id, member, body, \
                     claimed_at) VALUES (?, ?, ?, ?, ?)"
                ),
                ("acme", id, "ghost", body, CqlTimestamp(now_ms() - age_ms)),
            )
            .await
            .unwrap();
    }

    // The claim in flight: the write is told to read again and retry.
    assert_eq!(
        repo.write(facts_with_order("acme", "ann", 1, fresh))
            .await
            .unwrap(),
        Written::Stale
    );
    assert_eq!(repo.facts(&acme(), &ann()).await.unwrap(), None);
    // The claim a dead write left long ago: taken over, and the order is Ann's.
    assert_eq!(
        repo.write(facts_with_order("acme", "ann", 1, stale))
            .await
            .unwrap(),
        Written::Yes
    );
    assert_eq!(
        repo.order(&acme(), stale).await.unwrap().unwrap().member,
        "ann"
    );
    let orders = repo.orders(&acme(), &ann(), None, 10).await.unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].order_id, stale);
}
