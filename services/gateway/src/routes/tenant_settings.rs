//! Administration, continued: the platform's list of tenants, and changing a tenant (name,
//! time zone), its brands and its stores (name, brand, active). Brands and stores are
//! deactivated, never deleted: members, orders and roles name them.

use crate::problem::{ApiError, JsonBody, Problem};
use crate::routes::TenantPath;
use crate::routes::admin::{TenantDto, tenant_id};
use crate::routes::request_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use loyalty_identity::service::Principal;
use loyalty_proto::identity::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Reply<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants))
        .routes(routes!(update_tenant))
        .routes(routes!(update_brand))
        .routes(routes!(update_store))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantsDto {
    tenants: Vec<TenantDto>,
}

/// Every tenant, by id (the platform's own administrators only).
#[utoipa::path(get, path = "/v1/tenants", tag = "admin",
    responses((status = 200, body = TenantsDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_tenants(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
) -> Reply<TenantsDto> {
    let request = pb::ListTenantsRequest {
        request_id: request_id(&headers),
    };
    let listed = s.identity().list_tenants(&who, request).await?;
    let tenants = listed
        .tenants
        .into_iter()
        .map(TenantDto::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(TenantsDto { tenants }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantChangeBody {
    name: Option<String>,
    /// IANA (e.g. `Asia/Shanghai`): the time zone of reports and of the console's dates.
    /// Empty: UTC.
    time_zone: Option<String>,
}

/// Renames a tenant or sets its time zone; fields left out stay as they are.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}", tag = "admin", params(TenantPath), request_body = TenantChangeBody,
    responses((status = 200, body = TenantDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn update_tenant(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<TenantPath>,
    JsonBody(body): JsonBody<TenantChangeBody>,
) -> Reply<TenantDto> {
    let request = pb::UpdateTenantRequest {
        tenant_id: tenant_id(&p.tenant)?,
        name: body.name,
        time_zone: body.time_zone,
        request_id: request_id(&headers),
    };
    Ok(Json(
        s.identity()
            .update_tenant(&who, request)
            .await?
            .try_into()?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BrandPath {
    tenant: String,
    brand: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandChangeBody {
    name: Option<String>,
    /// False deactivates the brand; true reactivates it.
    active: Option<bool>,
}

/// Renames, deactivates or reactivates a brand; fields left out stay as they are.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/brands/{brand}", tag = "admin", params(BrandPath), request_body = BrandChangeBody,
    responses((status = 200, body = TenantDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn update_brand(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<BrandPath>,
    JsonBody(body): JsonBody<BrandChangeBody>,
) -> Reply<TenantDto> {
    let request = pb::UpdateBrandRequest {
        tenant_id: tenant_id(&p.tenant)?,
        brand_id: p.brand,
        name: body.name,
        active: body.active,
        request_id: request_id(&headers),
    };
    Ok(Json(
        s.identity().update_brand(&who, request).await?.try_into()?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct StorePath {
    tenant: String,
    store: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreChangeBody {
    name: Option<String>,
    /// The store's brand; empty: none.
    brand: Option<String>,
    /// False deactivates (closes) the store; true reactivates it.
    active: Option<bool>,
}

/// Renames a store, moves it to another brand, deactivates or reactivates it; fields left
/// out stay as they are.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/stores/{store}", tag = "admin", params(StorePath), request_body = StoreChangeBody,
    responses((status = 200, body = TenantDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn update_store(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<StorePath>,
    JsonBody(body): JsonBody<StoreChangeBody>,
) -> Reply<TenantDto> {
    let request = pb::UpdateStoreRequest {
        tenant_id: tenant_id(&p.tenant)?,
        store_id: p.store,
        name: body.name,
        brand: body.brand,
        active: body.active,
        request_id: request_id(&headers),
    };
    Ok(Json(
        s.identity().update_store(&who, request).await?.try_into()?,
    ))
}
