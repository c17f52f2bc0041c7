//! The points mall: head office keeps its items; members order them. Placing an order is a
//! saga with its record, the order itself: the unit and the member's limit are taken with
//! the order (`pending`), then the points are held in the ledger under a key of the order,
//! and the order is `placed` (confirmed in the same call: the points taken too, and the
//! order moved from `pending` to confirmed in one write). Points the ledger refuses make it
//! `failed`, giving the unit back; a saga cut short is undone by the sweep
//! ([`Campaigns::sweep_orders`]) once it is older than the grace time, so a unit is never
//! held without its points, nor points without their unit, for longer than that.

use super::Campaigns;
use crate::code;
use crate::mall::order::{Order, OrderState};
use crate::mall::{CENTRAL, Fulfilment, ItemKind, ItemState, MallItem, MemberLimit, Period};
use crate::store::{ItemWritten, OrderSettled, Placed};
use chrono::TimeZone;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_ledger::client::LedgerClient;
use loyalty_proto::ledger::v1 as ledger_pb;

/// Items listed per page at most.
const MAX_PAGE: usize = 500;

/// Where and how a member orders.
#[derive(Debug, Clone, Default)]
pub struct OrderRequest {
    /// The store ordered at (and the pick-up store), if any.
    pub store: Option<String>,
    /// The store's brand, when the item is offered by brand.
    pub brand: Option<String>,
    /// How a physical item is received; None: the item's first way.
    pub fulfilment: Option<Fulfilment>,
    /// Confirm the order in the same call (a till or e-shop with nothing to wait for): the
    /// points taken at once, as [`Campaigns::confirm_order`] would.
    pub confirm: bool,
}

pub(super) fn not_found(item: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::MallItemNotFound,
        format!("no item {item} in the points mall: create it first"),
    )
}

pub(super) fn order_not_found(id: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::MallOrderNotFound,
        format!("no order {id} of this item"),
    )
}

fn not_available(why: &str) -> ServiceError {
    ServiceError::new(ErrorCode::MallItemNotAvailable, why.to_string())
}

/// A ledger idempotency key for one step of an order's saga (the parts are hashed: the
/// ledger takes few characters, and ids may hold others).
pub(super) fn step_key(step: &str, (tenant, item, order): (&str, &str, &str)) -> String {
    format!("{step}-{}", super::short_key(&[tenant, item, order]))
}

/// The parts of an order's ledger keys: its tenant, item and id.
pub(super) fn key_parts(order: &Order) -> (&str, &str, &str) {
    (&order.tenant, &order.item, &order.id)
}

pub(super) fn wallet(tenant: &str, member: &str) -> ledger_pb::WalletRef {
    ledger_pb::WalletRef {
        tenant_id: tenant.to_string(),
        member_id: member.to_string(),
    }
}

/// The ledger's hold of `order`'s points, under a key of the order, taken at once when
/// `take`: asked again, it answers with the hold it made.
pub(super) fn hold_request(order: &Order, take: bool) -> ledger_pb::RedeemRequest {
    ledger_pb::RedeemRequest {
        wallet: Some(wallet(&order.tenant, &order.member)),
        idempotency_key: step_key("mall-hold", key_parts(order)),
        points: order.price.points,
        reference: format!("mall:{}/{}", order.item, order.id),
        capture: take,
    }
}

/// What the ledger did for an order under its hold's key.
pub(super) struct Held {
    pub hold: ledger_pb::Hold,
    /// The entry that took the points, when they were taken at once.
    pub taken: Option<String>,
}

/// Holds `order`'s points in the ledger, or takes them at once when `take`. The key may
/// already hold the other kind (a retry that asks otherwise than the first call did, the
/// sweep undoing an order taken at once): the ledger refuses that as a conflict, and the
/// other kind's answer tells what was done.
pub(super) async fn hold_in_ledger(
    ledger: &dyn LedgerClient,
    order: &Order,
    take: bool,
) -> ServiceResult<Held> {
    let written = match ledger.redeem(hold_request(order, take)).await {
        Err(e) if e.code == ErrorCode::IdempotencyConflict => {
            ledger.redeem(hold_request(order, !take)).await?
        }
        other => other?,
    };
    let hold = written
        .hold
        .ok_or_else(|| ServiceError::internal("the ledger held the points without a hold"))?;
    let taken = written
        .entries
        .iter()
        .find(|e| e.kind == "captured")
        .map(|e| e.entry_id.clone());
    Ok(Held { hold, taken })
}

/// The period of `limit` that `now_ms` falls in, by the calendar of `zone` (an order's, an
/// entry's).
pub(super) fn period_of(limit: Option<MemberLimit>, zone: &str, now_ms: i64) -> String {
    let Some(limit) = limit else {
        return "ever".into();
    };
    let zone: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    let Some(local) = zone.timestamp_millis_opt(now_ms).single() else {
        return "ever".into();
    };
    let format = match limit.period {
        Period::Day => "%Y-%m-%d",
        Period::Week => "%G-W%V",
        Period::Month => "%Y-%m",
        Period::Year => "%Y",
        Period::Ever => return "ever".into(),
    };
    local.format(format).to_string()
}

impl Campaigns {
    /// Writes an item over `expected_version` (0: a new item), keeping the units taken.
    pub async fn put_mall_item(
        &self,
        tenant: &TenantId,
        item: MallItem,
        expected_version: u64,
    ) -> ServiceResult<ItemState> {
        item.validate()?;
        if let ItemKind::Coupon { template } = &item.kind {
            self.active_template(tenant, template).await?;
        }
        let event = self.event(
            tenant.as_str(),
            "",
            "mall_item_saved",
            &serde_json::json!({"item": item.id, "kind": item.kind, "name": item.name,
                "price": item.price, "stock": item.stock}),
        );
        match self
            .store
            .put_item(tenant, &item, expected_version, vec![event])
            .await?
        {
            ItemWritten::Yes(_) => self.mall_item(tenant, &item.id).await,
            ItemWritten::Conflict(stored) => Err(ServiceError::new(
                ErrorCode::VersionConflict,
                format!(
                    "item {} is at version {}: read it and send that version",
                    item.id,
                    stored.unwrap_or(0)
                ),
            )),
        }
    }

    pub async fn mall_item(&self, tenant: &TenantId, id: &str) -> ServiceResult<ItemState> {
        code::check_id("item", id)?;
        self.store
            .item(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// The tenant's items after `after`, in id order.
    pub async fn mall_items(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<ItemState>> {
        self.store
            .items(tenant, after, limit.clamp(1, MAX_PAGE))
            .await
    }

    pub async fn mall_order(
        &self,
        tenant: &TenantId,
        item: &str,
        id: &str,
    ) -> ServiceResult<Order> {
        code::check_id("order_id", id)?;
        self.store
            .order_of(tenant, item, id)
            .await?
            .ok_or_else(|| order_not_found(id))
    }

    /// Orders one unit of `item` for `member` under `order_id` (the caller's idempotency
    /// key): the unit is reserved and the points held until the order is confirmed, or
    /// confirmed at once when the request says so. The same id answers with the order it
    /// made, finishing its saga if it was cut short (and confirming it, if asked to).
    pub async fn place_order(
        &self,
        tenant: &TenantId,
        (item_id, order_id): (&str, &str),
        member: &MemberId,
        request: OrderRequest,
    ) -> ServiceResult<Order> {
        code::check_id("order_id", order_id)?;
        let state = self.mall_item(tenant, item_id).await?;
        let confirm = request.confirm;
        let kind = &state.item.kind;
        if let Some(stored) = self.store.order_of(tenant, item_id, order_id).await? {
            return self
                .resume(tenant, same_member(stored, member)?, kind, confirm)
                .await;
        }
        let order = self
            .new_order(tenant, &state.item, order_id, member, request)
            .await?;
        let event = self.order_event(&order, "mall_order_pending");
        match self.store.place(&order, vec![event]).await? {
            Placed::Yes => self.hold_points(tenant, order, kind, confirm).await,
            Placed::Exists(stored) => {
                self.resume(tenant, same_member(*stored, member)?, kind, confirm)
                    .await
            }
            Placed::SoldOut => Err(ServiceError::new(
                ErrorCode::SoldOut,
                format!("item {item_id} has no unit left in stock {}", order.stock),
            )),
            Placed::MemberLimit => Err(ServiceError::new(
                ErrorCode::MallLimitReached,
                format!(
                    "item {item_id}: the member's limit for {} is reached",
                    order.period
                ),
            )),
            Placed::NoItem => Err(not_found(item_id)),
        }
    }

    /// The order a member's request makes, refused when the item is not theirs to order.
    async fn new_order(
        &self,
        tenant: &TenantId,
        item: &MallItem,
        order_id: &str,
        member: &MemberId,
        request: OrderRequest,
    ) -> ServiceResult<Order> {
        let now = self.now_ms();
        if !item.available_at(now) {
            return Err(not_available("the item is not offered at this time"));
        }
        let tier = self.tier_of(tenant, member).await?;
        if !item.eligible(tier.as_deref()) {
            return Err(ServiceError::new(
                ErrorCode::MallNotEligible,
                format!(
                    "item {} is for members of {}",
                    item.id,
                    item.tiers.join(", ")
                ),
            ));
        }
        let fulfilment = match (item.kind.physical(), request.fulfilment) {
            (false, _) => None,
            (true, Some(way)) if item.fulfilment.contains(&way) => Some(way),
            (true, Some(_)) => return Err(not_available("the item is not received this way")),
            (true, None) => item.fulfilment.first().copied(),
        };
        let store = request.store.as_deref();
        if fulfilment == Some(Fulfilment::Pickup) && store.is_none() {
            return Err(ServiceError::invalid(
                "store_id: name the store the member picks the item up at",
            ));
        }
        let offered = store.is_none_or(|s| item.offered_at(s, request.brand.as_deref()));
        if !offered {
            return Err(not_available("the item is not offered at this store"));
        }
        // A delivery ships from the central stock; anything else from the store's own.
        let from = match fulfilment {
            Some(Fulfilment::Delivery) => None,
            _ => store,
        };
        let Some((stock, _)) = item.stock_for(from) else {
            return Err(ServiceError::new(
                ErrorCode::SoldOut,
                format!("item {} has no stock for this store", item.id),
            ));
        };
        Ok(Order {
            id: order_id.to_string(),
            tenant: tenant.to_string(),
            item: item.id.clone(),
            member: member.to_string(),
            stock: stock.to_string(),
            store: request.store,
            period: period_of(item.limit, &item.time_zone, now),
            price: item.price_for(tier.as_deref()),
            fulfilment,
            state: OrderState::Pending,
            hold_id: None,
            paid_entry: None,
            pickup_code_sha256: None,
            coupon: None,
            credit: None,
            created_ms: now,
            updated_ms: now,
            due_ms: Some(now + self.saga_grace_ms),
        })
    }

    /// A stored order answering a retry: a pending one's saga is taken on from its hold, a
    /// placed one confirmed when the retry asks for that.
    async fn resume(
        &self,
        tenant: &TenantId,
        order: Order,
        kind: &ItemKind,
        confirm: bool,
    ) -> ServiceResult<Order> {
        match (order.state, confirm) {
            (OrderState::Pending, _) => self.hold_points(tenant, order, kind, confirm).await,
            (OrderState::Placed, true) => self.confirm_order(tenant, &order.item, &order.id).await,
            _ => Ok(order),
        }
    }

    /// The saga's second step: the points held in the ledger, and the order placed until
    /// the hold lapses; or, to `confirm` it, the points taken at once and the order
    /// confirmed (its kind of item delivered). The unit is given back if the ledger refuses
    /// the points.
    async fn hold_points(
        &self,
        tenant: &TenantId,
        order: Order,
        kind: &ItemKind,
        confirm: bool,
    ) -> ServiceResult<Order> {
        let ledger = self.ledger("holding an order's points")?;
        let held = match hold_in_ledger(ledger, &order, confirm).await {
            Ok(held) => held,
            Err(e) if refused(e.code) => {
                self.settle_order(tenant, &order, OrderState::Failed, None)
                    .await?;
                return Err(e);
            }
            // Unavailable, or not yet allowed: the saga stays pending, to be retried with
            // the same order id or undone by the sweep after the grace time.
            Err(e) => return Err(e),
        };
        let mut placed = order.moved(
            OrderState::Placed,
            self.now_ms(),
            Some(held.hold.expires_at_ms),
        );
        placed.hold_id = Some(held.hold.hold_id);
        if held.taken.is_none() && !confirm {
            return self
                .settle_order(tenant, &order, OrderState::Placed, Some(placed))
                .await;
        }
        // Confirmed at once, the order goes from pending to confirmed in one write, which also
        // carries the `placed` event: the same events as two calls, a write fewer.
        let before = vec![self.order_event(&placed, "mall_order_placed")];
        match held.taken {
            Some(entry) => {
                self.deliver(tenant, &order, placed, entry, kind, before)
                    .await
            }
            // Held by an earlier call that did not confirm: taken now.
            None => self.take_points(tenant, &order, placed, kind, before).await,
        }
    }

    /// Moves `order` from its state to `to` (as `next` when given, else as it is), with the
    /// event of the new state; the order as it is after.
    pub(super) async fn settle_order(
        &self,
        tenant: &TenantId,
        order: &Order,
        to: OrderState,
        next: Option<Order>,
    ) -> ServiceResult<Order> {
        self.settle_order_after(tenant, order, to, next, Vec::new())
            .await
    }

    /// [`Self::settle_order`], with `before`: the events of states the order passed through
    /// on the way, written with it.
    pub(super) async fn settle_order_after(
        &self,
        tenant: &TenantId,
        order: &Order,
        to: OrderState,
        next: Option<Order>,
        mut before: Vec<crate::events::CampaignEvent>,
    ) -> ServiceResult<Order> {
        let next = next.unwrap_or_else(|| order.moved(to, self.now_ms(), None));
        let name = format!("mall_order_{}", to.label());
        before.push(self.order_event(&next, &name));
        match self
            .store
            .settle_order(tenant, order.state, &next, before)
            .await?
        {
            OrderSettled::Yes(o) | OrderSettled::NotFrom(o) => Ok(*o),
            OrderSettled::Missing => Err(order_not_found(&order.id)),
        }
    }

    pub(super) fn order_event(&self, order: &Order, name: &str) -> crate::events::CampaignEvent {
        self.event(&order.tenant, &order.member, name, &order_data(order))
    }
}

/// What an order's events say of it. A delivery's address is never copied: the event says
/// where to read it (the member's sealed profile, through the member service, by those
/// allowed to read it in the clear).
pub(super) fn order_data(order: &Order) -> serde_json::Value {
    let delivery =
        (order.fulfilment == Some(Fulfilment::Delivery)).then_some("member_profile.address");
    serde_json::json!({"item": order.item, "order": order.id,
        "state": order.state.label(), "stock": order.stock, "store": order.store,
        "central_stock": order.stock == CENTRAL, "fulfilment": order.fulfilment,
        "deliver_to": delivery, "points": order.price.points, "cash": order.price.cash,
        "hold_id": order.hold_id, "paid_entry": order.paid_entry, "coupon": order.coupon,
        "credit": order.credit})
}

/// The ledger's refusals of a hold that trying again cannot change: the order fails.
pub(super) fn refused(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::InsufficientPoints
            | ErrorCode::WalletNotFound
            | ErrorCode::MemberErased
            | ErrorCode::MemberMerged
            | ErrorCode::AmountOverflow
            | ErrorCode::InvalidArgument
            | ErrorCode::IdempotencyConflict
    )
}

/// A stored order answers a retry only for the member it was made for.
pub(super) fn same_member(stored: Order, member: &MemberId) -> ServiceResult<Order> {
    if stored.member == member.as_str() {
        return Ok(stored);
    }
    Err(ServiceError::new(
        ErrorCode::IdempotencyConflict,
        format!(
            "order id {} was used for another member: use a new id for each order",
            stored.id
        ),
    ))
}
