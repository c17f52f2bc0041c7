//! A placed order's way on: confirmed (its points taken, a coupon delivered at once, stored
//! value credited by the outbox's reader), made ready for pick-up with a one-time code, fulfilled; or cancelled,
//! returned, lapsed or undone. Every step that gives points back does so through the outbox
//! ([`super::mall_refunds`]): the state and its event are one write, so the points follow
//! once, whatever crashes in between. The sweep lapses placed orders whose hold ran out
//! and undoes sagas cut short.

use super::Campaigns;
use super::mall::{hold_in_ledger, key_parts, order_data, refused, same_member, step_key, wallet};
use crate::events::CampaignEvent;
use crate::mall::order::{Order, OrderState};
use crate::mall::{Fulfilment, ItemKind};
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_proto::ledger::v1 as ledger_pb;
use sha2::{Digest, Sha256};

/// Orders handled per store call by the sweep.
const PAGE: usize = 500;

fn not_active(order: &Order, what: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::MallOrderNotActive,
        format!("order {} is {}: {what}", order.id, order.state.label()),
    )
}

fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.trim().as_bytes()))
}

impl Campaigns {
    /// Confirms a placed order (the member pays its cash part, if any, elsewhere): its
    /// points are taken; a coupon is issued, stored value recorded for the outbox's reader
    /// to credit, a service or donation recorded, and those are fulfilled at once. Confirming again answers with the order.
    pub async fn confirm_order(
        &self,
        tenant: &TenantId,
        item: &str,
        order_id: &str,
    ) -> ServiceResult<Order> {
        let order = self.mall_order(tenant, item, order_id).await?;
        match order.state {
            OrderState::Placed => {}
            s if s.paid() => return Ok(order),
            _ => return Err(not_active(&order, "place it again")),
        }
        if order.due_ms.is_some_and(|due| self.now_ms() >= due) {
            let lapsed = self
                .settle_order(tenant, &order, OrderState::Lapsed, None)
                .await?;
            return Err(not_active(&lapsed, "its hold ran out; place it again"));
        }
        let state = self.mall_item(tenant, item).await?;
        self.take_points(tenant, &order, order.clone(), &state.item.kind, Vec::new())
            .await
    }

    /// Takes the points `held` holds (the order as it would be placed) and gives what the
    /// item's `kind` gives: the order moved from `stored` (as it is stored) to confirmed, or
    /// to fulfilled when nothing is left to do, in one write with the events `before` it.
    pub(super) async fn take_points(
        &self,
        tenant: &TenantId,
        stored: &Order,
        held: Order,
        kind: &ItemKind,
        before: Vec<CampaignEvent>,
    ) -> ServiceResult<Order> {
        let ledger = self.ledger("taking an order's points")?;
        let captured = ledger
            .capture_hold(ledger_pb::HoldActionRequest {
                wallet: Some(wallet(&held.tenant, &held.member)),
                idempotency_key: step_key("mall-capture", key_parts(&held)),
                hold_id: held.hold_id.clone().unwrap_or_default(),
            })
            .await;
        let captured = match captured {
            Ok(written) => written,
            Err(e) if e.code == ErrorCode::HoldNotActive => {
                let lapsed = self
                    .settle_order(tenant, stored, OrderState::Lapsed, None)
                    .await?;
                return Err(not_active(&lapsed, "its hold ran out; place it again"));
            }
            Err(e) => return Err(e),
        };
        let paid = captured
            .entries
            .last()
            .map(|e| e.entry_id.clone())
            .unwrap_or_default();
        self.deliver(tenant, stored, held, paid, kind, before).await
    }

    /// Gives what the item's `kind` gives for `held`, whose points `paid` took: a coupon
    /// issued; stored value, a service or a donation fulfilled at once; a gift confirmed, to
    /// hand over. The order moved from `stored` in one write with the events `before` it.
    pub(super) async fn deliver(
        &self,
        tenant: &TenantId,
        stored: &Order,
        held: Order,
        paid: String,
        kind: &ItemKind,
        before: Vec<CampaignEvent>,
    ) -> ServiceResult<Order> {
        let member = MemberId::parse(held.member.as_str())?;
        let mut next = held.moved(OrderState::Confirmed, self.now_ms(), None);
        next.paid_entry = Some(paid).filter(|p| !p.is_empty());
        match kind {
            ItemKind::Gift { .. } => {}
            ItemKind::Coupon { template } => {
                let key = step_key("mall-coupon", key_parts(&held));
                next.coupon = Some(self.issue(tenant, template, &member, &key).await?.code);
                next.state = OrderState::Fulfilled;
            }
            // Credited by the outbox's reader from the fulfilled event, under the service's
            // own credential: the caller confirming may not adjust wallets.
            ItemKind::StoredValue { amount } => {
                next.credit = Some(*amount);
                next.state = OrderState::Fulfilled;
            }
            ItemKind::Service { .. } | ItemKind::Donation { .. } => {
                next.state = OrderState::Fulfilled;
            }
        }
        let to = next.state;
        self.settle_order_after(tenant, stored, to, Some(next), before)
            .await
    }

    /// Makes a confirmed pick-up order ready at its store: the answer carries the one-time
    /// code the member shows (kept only as its hash; the `mall_order_ready` event carries it
    /// to the system that tells the member).
    pub async fn ready_order(
        &self,
        tenant: &TenantId,
        item: &str,
        order_id: &str,
    ) -> ServiceResult<(Order, String)> {
        let order = self.mall_order(tenant, item, order_id).await?;
        if order.state != OrderState::Confirmed || order.fulfilment != Some(Fulfilment::Pickup) {
            return Err(not_active(
                &order,
                "only a confirmed pick-up order is made ready",
            ));
        }
        let code = format!("{:08}", rand::random_range(0..100_000_000u32));
        let mut next = order.moved(OrderState::Ready, self.now_ms(), None);
        next.pickup_code_sha256 = Some(code_hash(&code));
        let mut data = order_data(&next);
        data["pickup_code"] = serde_json::json!(code);
        let event = self.event(&next.tenant, &next.member, "mall_order_ready", &data);
        match self
            .store
            .settle_order(tenant, OrderState::Confirmed, &next, vec![event])
            .await?
        {
            crate::store::OrderSettled::Yes(o) => Ok((*o, code)),
            crate::store::OrderSettled::NotFrom(o) => {
                Err(not_active(&o, "it was moved meanwhile; read it again"))
            }
            crate::store::OrderSettled::Missing => Err(super::mall::order_not_found(order_id)),
        }
    }

    /// Hands a ready order over against its pick-up code, or records a delivered one.
    /// Fulfilling again answers with the order.
    pub async fn fulfil_order(
        &self,
        tenant: &TenantId,
        item: &str,
        order_id: &str,
        pickup_code: Option<&str>,
    ) -> ServiceResult<Order> {
        let order = self.mall_order(tenant, item, order_id).await?;
        match (order.state, order.fulfilment) {
            (OrderState::Fulfilled, _) => Ok(order),
            (OrderState::Ready, _) => {
                let shown = pickup_code.map(code_hash);
                if shown.is_none() || shown != order.pickup_code_sha256 {
                    return Err(ServiceError::new(
                        ErrorCode::PickupCodeMismatch,
                        "ask the member for the pick-up code sent when the order was ready",
                    ));
                }
                self.settle_order(tenant, &order, OrderState::Fulfilled, None)
                    .await
            }
            (OrderState::Confirmed, Some(Fulfilment::Delivery)) => {
                self.settle_order(tenant, &order, OrderState::Fulfilled, None)
                    .await
            }
            _ => Err(not_active(
                &order,
                "confirm it (and make a pick-up ready) first",
            )),
        }
    }

    /// Cancels an order before it is fulfilled: its unit goes back to stock and its points
    /// to the member, once. Cancelling again answers with the order.
    pub async fn cancel_order(
        &self,
        tenant: &TenantId,
        item: &str,
        order_id: &str,
    ) -> ServiceResult<Order> {
        let order = self.mall_order(tenant, item, order_id).await?;
        match order.state {
            OrderState::Cancelled => Ok(order),
            OrderState::Placed | OrderState::Confirmed | OrderState::Ready => {
                self.settle_order(tenant, &order, OrderState::Cancelled, None)
                    .await
            }
            OrderState::Fulfilled => Err(not_active(&order, "return it instead")),
            _ => Err(not_active(&order, "nothing is held for it")),
        }
    }

    /// Takes a fulfilled gift back: its unit goes back to stock and its points to the
    /// member, once. Returning again answers with the order.
    pub async fn return_order(
        &self,
        tenant: &TenantId,
        item: &str,
        order_id: &str,
    ) -> ServiceResult<Order> {
        let order = self.mall_order(tenant, item, order_id).await?;
        match (order.state, order.fulfilment.is_some()) {
            (OrderState::Returned, _) => Ok(order),
            (OrderState::Fulfilled, true) => {
                self.settle_order(tenant, &order, OrderState::Returned, None)
                    .await
            }
            _ => Err(not_active(&order, "only a fulfilled gift is returned")),
        }
    }

    /// A member's order, for the member it was made for.
    pub async fn member_order(
        &self,
        tenant: &TenantId,
        item: &str,
        order_id: &str,
        member: &MemberId,
    ) -> ServiceResult<Order> {
        same_member(self.mall_order(tenant, item, order_id).await?, member)
    }

    /// Lapses every placed order whose hold ran out and undoes every saga cut short longer
    /// than the grace time ago; how many.
    pub async fn sweep_orders(&self) -> ServiceResult<u64> {
        let mut swept = 0;
        loop {
            let due = self.store.due_orders(self.now_ms(), PAGE).await?;
            if due.is_empty() {
                return Ok(swept);
            }
            let mut moved = 0;
            for order in due {
                if !self.works_here(&order.tenant) {
                    continue;
                }
                let tenant = TenantId::parse(order.tenant.as_str())?;
                let after = match order.state {
                    OrderState::Placed => {
                        self.settle_order(&tenant, &order, OrderState::Lapsed, None)
                            .await?
                    }
                    OrderState::Pending => self.undo_order(&tenant, order).await?,
                    _ => continue,
                };
                moved += u64::from(!after.state.counts());
            }
            swept += moved;
            if moved == 0 {
                // Nothing could move now (the ledger unreachable): the next sweep retries.
                return Ok(swept);
            }
        }
    }

    /// Undoes a saga cut short: the hold it may have made, or the points it may have taken
    /// at once, is found by its key (asking for a hold again answers with either, or makes
    /// one that is then given back with it), and the order fails, which gives both back.
    async fn undo_order(&self, tenant: &TenantId, order: Order) -> ServiceResult<Order> {
        let ledger = self.ledger("undoing an order")?;
        let held = hold_in_ledger(ledger, &order, false).await;
        let mut failed = order.moved(OrderState::Failed, self.now_ms(), None);
        match held {
            // The refund voids the hold, or reverses the points taken at once.
            Ok(held) => {
                failed.hold_id = Some(held.hold.hold_id);
                failed.paid_entry = held.taken;
            }
            // Nothing was held, nor can be.
            Err(e) if refused(e.code) => {}
            // The ledger unreachable: the next sweep tries again.
            Err(_) => return Ok(order),
        }
        self.settle_order(tenant, &order, OrderState::Failed, Some(failed))
            .await
    }
}
