//! The points-mall methods of the in-process client: each request parsed, and the answer as
//! JSON. An order's pick-up code hash never leaves the service.

use crate::mall::order::Order;
use crate::mall::{Fulfilment, ItemState};
use crate::service::Campaigns;
use crate::service::mall::OrderRequest;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_proto::campaign::v1 as pb;
use std::collections::BTreeMap;

/// Items listed when the caller names no limit.
const DEFAULT_PAGE: usize = 100;

fn item_json(state: &ItemState) -> serde_json::Value {
    let left: BTreeMap<&String, u64> = state
        .item
        .stock
        .keys()
        .map(|k| (k, state.left(k)))
        .collect();
    serde_json::json!({"item": state.item, "version": state.version, "taken": state.taken,
        "left": left})
}

fn order_json(order: &Order) -> serde_json::Value {
    let mut value = serde_json::to_value(order).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.remove("pickup_code_sha256");
    }
    value
}

fn document(value: serde_json::Value) -> pb::CampaignDocument {
    pb::CampaignDocument {
        json: value.to_string(),
    }
}

fn text(value: String) -> Option<String> {
    Some(value).filter(|v| !v.is_empty())
}

pub(super) async fn put_item(
    c: &Campaigns,
    r: pb::PutMallItemRequest,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let item =
        serde_json::from_str(&r.json).map_err(|e| ServiceError::invalid(format!("item: {e}")))?;
    let state = c.put_mall_item(&tenant, item, r.expected_version).await?;
    Ok(document(item_json(&state)))
}

pub(super) async fn get_item(
    c: &Campaigns,
    r: pb::MallItemRef,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    Ok(document(item_json(
        &c.mall_item(&tenant, &r.item_id).await?,
    )))
}

pub(super) async fn list_items(
    c: &Campaigns,
    r: pb::ListMallItemsRequest,
) -> ServiceResult<pb::CampaignDocuments> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let limit = match r.limit {
        0 => DEFAULT_PAGE,
        n => n as usize,
    };
    let after = text(r.after);
    let items = c.mall_items(&tenant, after.as_deref(), limit).await?;
    Ok(pb::CampaignDocuments {
        json: items.iter().map(|s| item_json(s).to_string()).collect(),
    })
}

pub(super) async fn place(
    c: &Campaigns,
    r: pb::PlaceMallOrderRequest,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let member = MemberId::parse(r.member_id)?;
    let fulfilment = match r.fulfilment.as_str() {
        "" => None,
        "pickup" => Some(Fulfilment::Pickup),
        "delivery" => Some(Fulfilment::Delivery),
        other => {
            return Err(ServiceError::invalid(format!(
                "fulfilment: {other:?} is not pickup or delivery"
            )));
        }
    };
    let request = OrderRequest {
        store: text(r.store_id),
        brand: text(r.brand_id),
        fulfilment,
        confirm: r.confirm,
    };
    let order = c
        .place_order(&tenant, (&r.item_id, &r.order_id), &member, request)
        .await?;
    Ok(document(order_json(&order)))
}

pub(super) async fn get_order(
    c: &Campaigns,
    r: pb::MallOrderRef,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let order = c.mall_order(&tenant, &r.item_id, &r.order_id).await?;
    Ok(document(order_json(&order)))
}

pub(super) async fn change(
    c: &Campaigns,
    r: pb::ChangeMallOrderRequest,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let (item, id) = (r.item_id.as_str(), r.order_id.as_str());
    let (order, code) = match r.step.as_str() {
        "confirm" => (c.confirm_order(&tenant, item, id).await?, None),
        "ready" => {
            let (order, code) = c.ready_order(&tenant, item, id).await?;
            (order, Some(code))
        }
        "fulfil" => {
            let code = text(r.pickup_code);
            (
                c.fulfil_order(&tenant, item, id, code.as_deref()).await?,
                None,
            )
        }
        "cancel" => (c.cancel_order(&tenant, item, id).await?, None),
        "return" => (c.return_order(&tenant, item, id).await?, None),
        other => {
            return Err(ServiceError::invalid(format!(
                "step: {other:?} is not confirm, ready, fulfil, cancel or return"
            )));
        }
    };
    let mut value = order_json(&order);
    if let (Some(code), Some(fields)) = (code, value.as_object_mut()) {
        fields.insert("pickup_code".into(), code.into());
    }
    Ok(document(value))
}
