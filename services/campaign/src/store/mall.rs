//! The points-mall half of the campaign store's port: an item with the units taken from each
//! of its stocks, its members' counts per limit period and its orders, all moved together by
//! one write per order, as a flash sale's claims are.

use crate::events::CampaignEvent;
use crate::mall::order::{Order, OrderState};
use crate::mall::{ItemState, MallItem};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

/// How a write of an item ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemWritten {
    /// Stored at this version.
    Yes(u64),
    /// The item is at another version (None: there is none) than the write expected.
    Conflict(Option<u64>),
}

/// How a new order ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    Yes,
    /// An order of the item has its id (the stored one).
    Exists(Box<Order>),
    /// Its stock has no unit left: nothing was written.
    SoldOut,
    /// The member ordered the item's limit in the order's period: nothing was written.
    MemberLimit,
    NoItem,
}

/// How a change of an order's state ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderSettled {
    /// Moved: the order as it is now.
    Yes(Box<Order>),
    /// Not in the state the change starts from: the order as it is.
    NotFrom(Box<Order>),
    Missing,
}

#[async_trait]
pub trait MallRepository: Send + Sync + 'static {
    /// Writes `item` if the stored one is at `expected` (0: there is none), keeping the units
    /// taken from its stocks, with `events`.
    async fn put_item(
        &self,
        tenant: &TenantId,
        item: &MallItem,
        expected: u64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<ItemWritten>;
    async fn item(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<ItemState>>;
    /// The tenant's items after `after`, in id order, at most `limit`.
    async fn items(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<ItemState>>;
    async fn order_of(
        &self,
        tenant: &TenantId,
        item: &str,
        id: &str,
    ) -> ServiceResult<Option<Order>>;
    /// Stores a new order, if no order of the item has its id, its stock has a unit left and
    /// its member is under the item's limit in the order's period, all at once with `events`.
    async fn place(&self, order: &Order, events: Vec<CampaignEvent>) -> ServiceResult<Placed>;
    /// Moves an order in state `from` to `next` (its new state and details), giving its unit
    /// and its member's count back when the new state does not count, with `events`.
    async fn settle_order(
        &self,
        tenant: &TenantId,
        from: OrderState,
        next: &Order,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<OrderSettled>;
    /// Orders of every tenant due before `before_ms` (pending or placed), at most `limit`,
    /// soonest first.
    async fn due_orders(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Order>>;
}
