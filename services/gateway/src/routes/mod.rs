//! REST routes under `/v1`: the ledger's, members, coupons, administration, and logging in.

pub mod admin;
pub mod auth;
pub mod campaigns;
pub mod coupon_redemptions;
pub mod coupons;
pub mod flash_sales;
pub mod ledger;
pub mod lucky_draws;
pub mod mall;
pub mod member_list;
pub mod member_orders;
pub mod member_program;
pub mod members;
pub mod merges;
pub mod referrals;
pub mod segments;
pub mod staff_admin;
pub mod tenant_settings;

use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa::IntoParams;

/// The tenant of a tenant-wide route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantPath {
    /// The tenant (retail chain).
    pub(crate) tenant: String,
}

/// The request's `X-Request-Id` (set by the gateway when the caller sent none), or empty.
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// A campaign service's JSON document as the reply's body.
pub(crate) fn document(
    document: loyalty_proto::campaign::v1::CampaignDocument,
) -> Result<axum::Json<serde_json::Value>, crate::problem::ApiError> {
    Ok(axum::Json(
        serde_json::from_str(&document.json).map_err(loyalty_common::ServiceError::internal)?,
    ))
}
