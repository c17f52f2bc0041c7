//! Recording orders: each counts towards the member's spend (tiers, scores, segments) and
//! earns points in the ledger at the member's tier multiplier, and may lift the member to a
//! higher tier at once. The ledger is asked first,
//! with the order id as its idempotency key, then the order is recorded with what it
//! earned; a retry after a failure in between earns nothing twice and records the order.

use super::{ATTEMPTS, Members, busy, not_found};
use crate::orders::{Order, OrderLine};
use crate::store::{MemberWrite, Written};
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::{ServiceError, Timestamp};

/// An order as a till or a shop sends it.
#[derive(Debug, Clone, Default)]
pub struct OrderInput {
    pub order_id: String,
    /// When the purchase happened (now if not given).
    pub at: Option<Timestamp>,
    pub total: i64,
    pub lines: Vec<OrderLine>,
    pub store: Option<String>,
    pub channel: Option<String>,
    pub refund_of: Option<String>,
}

/// A recorded order, and whether this call recorded it or found it recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub order: Order,
    pub replayed: bool,
}

fn conflict(order_id: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::OrderConflict,
        format!("order {order_id} is recorded already with other details"),
    )
}

impl Members {
    /// Records an order of `member`, earning its points; recording the same order again
    /// returns the first recording.
    pub async fn record_order(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        input: OrderInput,
    ) -> ServiceResult<Recorded> {
        let now = self.clock.now();
        // Without a time the order happened now, and a retry of it later is the same order.
        let timed = input.at.is_some();
        let mut order = Order {
            order_id: input.order_id,
            member: member.to_string(),
            at: input.at.unwrap_or(now),
            at_given: timed,
            total: input.total,
            lines: input.lines,
            store: input.store,
            channel: input.channel,
            refund_of: input.refund_of,
            points: None,
            recorded_at: now,
        };
        order.validate(now)?;
        let t = tenant.as_str();
        if let Some(existing) = self.repo.order(tenant, &order.order_id).await? {
            return replay(existing, &order, timed);
        }
        if let Some(of) = &order.refund_of {
            let original = self.repo.order(tenant, of).await?;
            let Some(original) = original.filter(|o| o.member == order.member) else {
                return Err(ServiceError::invalid(format!(
                    "refund_of: member {member} has no order {of}"
                )));
            };
            // A refund gives back at most what was paid, and not before it was paid.
            if order.total.unsigned_abs() > original.total.unsigned_abs() || order.at < original.at
            {
                return Err(ServiceError::invalid(format!(
                    "a refund of {of} must not exceed its total or precede it"
                )));
            }
        }
        let policy = self.tier_policy(tenant).await?;
        // The multiplier is fixed once: the ledger's replay of this earn compares it, so a
        // tier change between attempts must not change the request.
        let multiplier = {
            let (_, facts) = self.live(tenant, member).await?;
            Members::earn_multiplier_bp(policy.as_ref(), &facts.value)
        };
        for _ in 0..ATTEMPTS {
            let (_, mut facts) = self.live(tenant, member).await?;
            if order.total > 0
                && let Some(ledger) = &self.ledger
            {
                order.points = ledger.earn(tenant, member, &order, multiplier).await?;
            }
            facts.value.add_order(order.at, order.total);
            facts.version += 1;
            let data = serde_json::json!({
                "order_id": order.order_id,
                "at": order.at.to_rfc3339(),
                "total": order.total,
                "store": order.store,
                "channel": order.channel,
                "refund_of": order.refund_of,
                "points": order.points,
            });
            let mut events = vec![self.event(t, member.as_str(), "order_recorded", &data)];
            // The spend may reach a higher tier: upgrades happen at once, in the same write.
            if let Some(policy) = &policy {
                events.extend(self.evaluate_tier(policy, t, &mut facts.value).await?.1);
            }
            let write = MemberWrite {
                tenant: t.into(),
                member: member.to_string(),
                facts: Some(facts),
                order: Some(order.clone()),
                events,
                ..MemberWrite::default()
            };
            match self.repo.write(write).await? {
                Written::Yes => {
                    return Ok(Recorded {
                        order,
                        replayed: false,
                    });
                }
                Written::OrderExists(existing) => return replay(*existing, &order, timed),
                _ => continue,
            }
        }
        Err(busy())
    }

    /// The member's orders, newest first: a page of at most `limit` before `before` (the
    /// cursor the previous page returned), and the cursor of the next page.
    pub async fn orders(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        before: Option<&str>,
        limit: usize,
    ) -> ServiceResult<(Vec<Order>, Option<String>)> {
        if self.repo.facts(tenant, member).await?.is_none() {
            return Err(not_found(member.as_str()));
        }
        let limit = limit.clamp(1, 500);
        let page = self.repo.orders(tenant, member, before, limit).await?;
        let next = (page.len() == limit)
            .then(|| page.last().map(crate::store::history_cursor))
            .flatten();
        Ok((page, next))
    }
}

fn replay(existing: Order, asked: &Order, timed: bool) -> ServiceResult<Recorded> {
    let mut asked = asked.clone();
    if !timed {
        asked.at = existing.at;
    }
    if existing.same_purchase(&asked) {
        Ok(Recorded {
            order: existing,
            replayed: true,
        })
    } else {
        Err(conflict(&asked.order_id))
    }
}
