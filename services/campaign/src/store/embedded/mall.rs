//! The points mall in the embedded store: items with their units taken (JSON), members'
//! counts per item and period, orders, and pending or placed orders by when they are due,
//! each order moved under the store's one writer with its events.

use super::{EmbeddedCampaignStore, Inner, encode, key, storage, time_part};
use crate::events::CampaignEvent;
use crate::mall::order::{Order, OrderState};
use crate::mall::{ItemState, MallItem};
use crate::store::mall::{ItemWritten, MallRepository, OrderSettled, Placed};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

fn item_key(tenant: &str, item: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), item.as_bytes()])
}

fn order_key(tenant: &str, item: &str, id: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), item.as_bytes(), id.as_bytes()])
}

fn member_key(o: &Order) -> Vec<u8> {
    key(&[
        o.tenant.as_bytes(),
        o.item.as_bytes(),
        o.member.as_bytes(),
        o.period.as_bytes(),
    ])
}

fn due_key(o: &Order, due: i64) -> Vec<u8> {
    key(&[
        &time_part(due),
        o.tenant.as_bytes(),
        o.item.as_bytes(),
        o.id.as_bytes(),
    ])
}

impl Inner {
    /// Items are kept as JSON: their kind is an internally tagged enum.
    fn item_state(&self, tenant: &str, item: &str) -> ServiceResult<Option<ItemState>> {
        self.mall_items
            .get(item_key(tenant, item))
            .map_err(storage)?
            .map(|v| serde_json::from_slice(&v).map_err(ServiceError::internal))
            .transpose()
    }

    fn put_item_state(&self, batch: &mut fjall::OwnedWriteBatch, tenant: &str, s: &ItemState) {
        // Plain data: serialising it cannot fail.
        let json = serde_json::to_vec(s).unwrap_or_default();
        batch.insert(&self.mall_items, item_key(tenant, &s.item.id), json);
    }

    /// Counts `order` in (`up`) or out of its stock and its member's count, in `batch`.
    fn count_order(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        state: &mut ItemState,
        order: &Order,
        up: bool,
    ) -> ServiceResult<()> {
        state.count(&order.stock, up);
        self.put_item_state(batch, &order.tenant, state);
        let row = member_key(order);
        let ordered = Self::get::<u32>(&self.mall_members, &row)?.unwrap_or(0);
        let next = if up {
            ordered.saturating_add(1)
        } else {
            ordered.saturating_sub(1)
        };
        batch.insert(&self.mall_members, row, encode(&next)?);
        Ok(())
    }
}

#[async_trait]
impl MallRepository for EmbeddedCampaignStore {
    async fn put_item(
        &self,
        tenant: &TenantId,
        item: &MallItem,
        expected: u64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<ItemWritten> {
        let (tenant, item) = (tenant.to_string(), item.clone());
        self.write_locked(move |inner| {
            let stored = inner.item_state(&tenant, &item.id)?;
            let version = stored.as_ref().map_or(0, |s| s.version);
            if version != expected {
                return Ok(ItemWritten::Conflict(stored.map(|s| s.version)));
            }
            let mut state = stored.unwrap_or_else(|| ItemState::new(item.clone()));
            state.item = item;
            state.version = version + 1;
            let mut batch = inner.batch();
            inner.put_item_state(&mut batch, &tenant, &state);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(ItemWritten::Yes(state.version))
        })
        .await
    }

    async fn item(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<ItemState>> {
        self.settled().await?;
        self.inner.item_state(tenant.as_str(), id)
    }

    async fn items(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<ItemState>> {
        self.settled().await?;
        let prefix = [tenant.as_str().as_bytes(), &[0]].concat();
        let start = match after {
            Some(after) => [item_key(tenant.as_str(), after), vec![0]].concat(),
            None => prefix.clone(),
        };
        let mut found = Vec::new();
        for guard in self.inner.mall_items.range(start..) {
            let (row, value) = guard.into_inner().map_err(storage)?;
            if !row.starts_with(&prefix) || found.len() >= limit {
                break;
            }
            found.push(serde_json::from_slice(&value).map_err(ServiceError::internal)?);
        }
        Ok(found)
    }

    async fn order_of(
        &self,
        tenant: &TenantId,
        item: &str,
        id: &str,
    ) -> ServiceResult<Option<Order>> {
        self.settled().await?;
        Inner::get(
            &self.inner.mall_orders,
            &order_key(tenant.as_str(), item, id),
        )
    }

    async fn place(&self, order: &Order, events: Vec<CampaignEvent>) -> ServiceResult<Placed> {
        let order = order.clone();
        self.write_locked(move |inner| {
            let row = order_key(&order.tenant, &order.item, &order.id);
            if let Some(stored) = Inner::get::<Order>(&inner.mall_orders, &row)? {
                return Ok(Placed::Exists(Box::new(stored)));
            }
            let Some(mut state) = inner.item_state(&order.tenant, &order.item)? else {
                return Ok(Placed::NoItem);
            };
            if state.left(&order.stock) == 0 {
                return Ok(Placed::SoldOut);
            }
            let ordered = Inner::get::<u32>(&inner.mall_members, &member_key(&order))?;
            if let Some(limit) = state.item.limit
                && ordered.unwrap_or(0) >= limit.count
            {
                return Ok(Placed::MemberLimit);
            }
            let mut batch = inner.batch();
            inner.count_order(&mut batch, &mut state, &order, true)?;
            batch.insert(&inner.mall_orders, row, encode(&order)?);
            if let Some(due) = order.due_ms {
                batch.insert(&inner.mall_due, due_key(&order, due), []);
            }
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(Placed::Yes)
        })
        .await
    }

    async fn settle_order(
        &self,
        tenant: &TenantId,
        from: OrderState,
        next: &Order,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<OrderSettled> {
        let next = next.clone();
        let row = order_key(tenant.as_str(), &next.item, &next.id);
        self.write_locked(move |inner| {
            let Some(stored) = Inner::get::<Order>(&inner.mall_orders, &row)? else {
                return Ok(OrderSettled::Missing);
            };
            if stored.state != from {
                return Ok(OrderSettled::NotFrom(Box::new(stored)));
            }
            let mut batch = inner.batch();
            if from.counts() && !next.state.counts() {
                let Some(mut state) = inner.item_state(&stored.tenant, &stored.item)? else {
                    return Err(ServiceError::internal("an order of an item that is gone"));
                };
                inner.count_order(&mut batch, &mut state, &stored, false)?;
            }
            if let Some(due) = stored.due_ms {
                batch.remove(&inner.mall_due, due_key(&stored, due));
            }
            if let Some(due) = next.due_ms {
                batch.insert(&inner.mall_due, due_key(&next, due), []);
            }
            batch.insert(&inner.mall_orders, row, encode(&next)?);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(OrderSettled::Yes(Box::new(next)))
        })
        .await
    }

    async fn due_orders(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Order>> {
        self.settled().await?;
        let end = time_part(before_ms);
        let mut found = Vec::new();
        for guard in self.inner.mall_due.range(..end.to_vec()).take(limit) {
            let row = guard.key().map_err(storage)?;
            let mut parts = row.get(9..).unwrap_or_default().splitn(3, |b| *b == 0);
            let (Some(tenant), Some(item), Some(id)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(ServiceError::internal("bad mall due key"));
            };
            if let Some(o) = Inner::get(&self.inner.mall_orders, &key(&[tenant, item, id]))? {
                found.push(o);
            }
        }
        Ok(found)
    }
}
