//! The points mall on ScyllaDB: one entity partition per item (`item:<id>`), its state (the
//! item and the units taken per stock, JSON) static, its orders (`ord`) and its members'
//! counts per period (`m`) as rows, as a flash sale keeps its claims. Every order and every
//! change of one is a conditional batch on the item's version, so the stock, the member's
//! limit and the order move together or not at all. Items are listed under `mall_items`;
//! pending and placed orders in `due` by when they are due, before they are written.

use super::indexes::MALL_ORDERS;
use super::sales::back_off;
use super::{ScyllaCampaignStore, decode, encode};
use crate::events::CampaignEvent;
use crate::mall::order::{Order, OrderState};
use crate::mall::{ItemState, MallItem};
use crate::store::mall::{ItemWritten, MallRepository, OrderSettled, Placed};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

const ORDER: &str = "ord";
const MEMBER: &str = "m";
const ITEMS: &str = "mall_items";
/// Tries of one write against others on the same item before the caller is asked to retry.
const MAX_TRIES: u32 = 200;

fn item_key(id: &str) -> String {
    format!("item:{id}")
}

/// A member's count's row: the member and the limit's period.
fn member_row(o: &Order) -> String {
    format!("{}/{}", o.member, o.period)
}

/// An order's pointer in `due`: the item and the order.
fn due_id(o: &Order) -> String {
    format!("{}/{}", o.item, o.id)
}

fn to_json(state: &ItemState) -> ServiceResult<Vec<u8>> {
    serde_json::to_vec(state).map_err(ServiceError::internal)
}

fn from_json(body: &[u8]) -> ServiceResult<ItemState> {
    serde_json::from_slice(body).map_err(ServiceError::internal)
}

fn busy() -> ServiceError {
    ServiceError::unavailable("the item is busy: retry with the same order id")
}

impl ScyllaCampaignStore {
    /// The item's state with the entity's version (its lock, moved by every order).
    async fn item_state(
        &self,
        tenant: &str,
        item: &str,
    ) -> ServiceResult<Option<(i64, ItemState)>> {
        match self.state(tenant, &item_key(item)).await? {
            Some((version, body)) => Ok(Some((version, from_json(&body)?))),
            None => Ok(None),
        }
    }

    async fn read_order(&self, tenant: &str, item: &str, id: &str) -> ServiceResult<Option<Order>> {
        match self.row_of(tenant, &item_key(item), ORDER, id).await? {
            Some(body) => Ok(Some(decode(&body)?)),
            None => Ok(None),
        }
    }

    async fn ordered(&self, o: &Order) -> ServiceResult<u32> {
        match self
            .row_of(&o.tenant, &item_key(&o.item), MEMBER, &member_row(o))
            .await?
        {
            Some(body) => decode(&body),
            None => Ok(0),
        }
    }

    /// One try of a write of an item: None if another write on it came first.
    async fn try_put_item(
        &self,
        tenant: &str,
        item: &MallItem,
        expected: u64,
        events: &[CampaignEvent],
    ) -> ServiceResult<Option<ItemWritten>> {
        let stored = self.item_state(tenant, &item.id).await?;
        let version = stored.as_ref().map_or(0, |(_, s)| s.version);
        if version != expected {
            return Ok(Some(ItemWritten::Conflict(stored.map(|(_, s)| s.version))));
        }
        let (lock, mut state) = match stored {
            Some((lock, state)) => (Some(lock), state),
            None => (None, ItemState::new(item.clone())),
        };
        state.item = item.clone();
        state.version = version + 1;
        let body = to_json(&state)?;
        let key = item_key(&item.id);
        let done = self
            .commit(tenant, &key, lock, body, Vec::new(), events)
            .await?;
        Ok(done.then_some(ItemWritten::Yes(state.version)))
    }

    /// One try of an order: None if another write on the item came first.
    async fn try_place(
        &self,
        order: &Order,
        events: &[CampaignEvent],
    ) -> ServiceResult<Option<Placed>> {
        let t = &order.tenant;
        // The item's version first: every row read after it is at least as new, and a write
        // that lands in between moves it, so the commit below fails and is tried again.
        let Some((version, mut state)) = self.item_state(t, &order.item).await? else {
            return Ok(Some(Placed::NoItem));
        };
        if let Some(stored) = self.read_order(t, &order.item, &order.id).await? {
            return Ok(Some(Placed::Exists(Box::new(stored))));
        }
        if state.left(&order.stock) == 0 {
            return Ok(Some(Placed::SoldOut));
        }
        let ordered = self.ordered(order).await?;
        if state.item.limit.is_some_and(|l| ordered >= l.count) {
            return Ok(Some(Placed::MemberLimit));
        }
        state.count(&order.stock, true);
        let rows = vec![
            (ORDER, order.id.clone(), encode(order)?),
            (MEMBER, member_row(order), encode(&(ordered + 1))?),
        ];
        let key = item_key(&order.item);
        let body = to_json(&state)?;
        let done = self
            .commit(t, &key, Some(version), body, rows, events)
            .await?;
        Ok(done.then_some(Placed::Yes))
    }

    /// One try of a change of an order: None if another write on the item came first.
    async fn try_settle_order(
        &self,
        tenant: &str,
        from: OrderState,
        next: &Order,
        events: &[CampaignEvent],
    ) -> ServiceResult<Option<OrderSettled>> {
        // The item's version before the order, for the reason `try_place` gives.
        let Some((version, mut state)) = self.item_state(tenant, &next.item).await? else {
            return Ok(Some(OrderSettled::Missing));
        };
        let Some(stored) = self.read_order(tenant, &next.item, &next.id).await? else {
            return Ok(Some(OrderSettled::Missing));
        };
        if stored.state != from {
            return Ok(Some(OrderSettled::NotFrom(Box::new(stored))));
        }
        let mut rows = Vec::new();
        if from.counts() && !next.state.counts() {
            state.count(&stored.stock, false);
            let ordered = self.ordered(&stored).await?.saturating_sub(1);
            rows.push((MEMBER, member_row(&stored), encode(&ordered)?));
        }
        rows.push((ORDER, next.id.clone(), encode(next)?));
        let body = to_json(&state)?;
        let key = item_key(&next.item);
        let done = self
            .commit(tenant, &key, Some(version), body, rows, events)
            .await?;
        Ok(done.then_some(OrderSettled::Yes(Box::new(next.clone()))))
    }
}

#[async_trait]
impl MallRepository for ScyllaCampaignStore {
    async fn put_item(
        &self,
        tenant: &TenantId,
        item: &MallItem,
        expected: u64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<ItemWritten> {
        let t = tenant.as_str();
        let binds = (t.to_string(), ITEMS.to_string(), item.id.clone());
        self.statements.list_add.run(self.session(), binds).await?;
        for tries in 1..=MAX_TRIES {
            if let Some(done) = self.try_put_item(t, item, expected, &events).await? {
                return Ok(done);
            }
            back_off(tries).await;
        }
        Err(busy())
    }

    async fn item(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<ItemState>> {
        Ok(self
            .item_state(tenant.as_str(), id)
            .await?
            .map(|(_, state)| state))
    }

    async fn items(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<ItemState>> {
        let t = tenant.as_str();
        let mut found = Vec::new();
        // An id listed by a write that never landed has no item: skipped.
        for id in self.listed(t, ITEMS, after, limit).await? {
            if let Some((_, state)) = self.item_state(t, &id).await? {
                found.push(state);
            }
        }
        Ok(found)
    }

    async fn order_of(
        &self,
        tenant: &TenantId,
        item: &str,
        id: &str,
    ) -> ServiceResult<Option<Order>> {
        self.read_order(tenant.as_str(), item, id).await
    }

    async fn place(&self, order: &Order, events: Vec<CampaignEvent>) -> ServiceResult<Placed> {
        if let Some(due) = order.due_ms {
            self.due_add(MALL_ORDERS, due, &order.tenant, &due_id(order))
                .await?;
        }
        for tries in 1..=MAX_TRIES {
            if let Some(done) = self.try_place(order, &events).await? {
                return Ok(done);
            }
            back_off(tries).await;
        }
        Err(busy())
    }

    async fn settle_order(
        &self,
        tenant: &TenantId,
        from: OrderState,
        next: &Order,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<OrderSettled> {
        let t = tenant.as_str();
        if let Some(due) = next.due_ms {
            self.due_add(MALL_ORDERS, due, t, &due_id(next)).await?;
        }
        for tries in 1..=MAX_TRIES {
            // An order's old pointer in `due` is dropped by the sweep that reads it.
            if let Some(done) = self.try_settle_order(t, from, next, &events).await? {
                return Ok(done);
            }
            back_off(tries).await;
        }
        Err(busy())
    }

    async fn due_orders(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Order>> {
        let mut found = Vec::new();
        for (at, tenant, id) in self.due_before(MALL_ORDERS, before_ms, limit).await? {
            let Some((item, order)) = id.split_once('/') else {
                continue;
            };
            match self.read_order(&tenant, item, order).await? {
                // Due at this pointer's time: listed. Due later: a newer pointer lists it.
                Some(o) if o.due_ms == Some(at) => found.push(o),
                // Settled, moved on, or never written: the pointer is done with.
                _ => self.due_remove(MALL_ORDERS, at, &tenant, &id).await?,
            }
        }
        Ok(found)
    }
}
