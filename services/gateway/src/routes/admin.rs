//! Administration: tenants, their brands, stores and security policy, staff accounts, roles,
//! API keys, and the audit log. The guard ([`crate::access`]) authorizes each route; the
//! identity service checks again on the objects it touches (a staff account's own tenant).

use crate::problem::{ApiError, JsonBody, Problem, QueryParams};
use crate::routes::TenantPath;
use crate::routes::request_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use loyalty_common::ServiceError;
use loyalty_common::Timestamp;
use loyalty_common::ids::{ApiKeyId, BrandId, StaffId, TenantId};
use loyalty_identity::audit::AuditRecord;
use loyalty_identity::model::{Brand, Tenant};
use loyalty_identity::policy::SecurityPolicy;
use loyalty_identity::service::{IdentityService, NewStaff, Principal};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Reply<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tenant))
        .routes(routes!(get_tenant))
        .routes(routes!(add_brand))
        .routes(routes!(add_store))
        .routes(routes!(set_policy))
        .routes(routes!(create_staff))
        .routes(routes!(reset_password))
        .routes(routes!(unlock))
        .routes(routes!(grant_role))
        .routes(routes!(create_api_key))
        .routes(routes!(revoke_api_key))
        .routes(routes!(rotate_api_key))
        .routes(routes!(audit))
}

fn tenant_id(tenant: &str) -> Result<TenantId, ApiError> {
    Ok(TenantId::parse(tenant)?)
}

/// A tenant as administrators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantDto {
    id: String,
    name: String,
    brands: Vec<serde_json::Value>,
    stores: Vec<serde_json::Value>,
    #[schema(value_type = Object)]
    policy: SecurityPolicy,
}

impl From<Tenant> for TenantDto {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name,
            brands: t
                .brands
                .iter()
                .map(|b| serde_json::json!({"id": b.id, "name": b.name}))
                .collect(),
            stores: t
                .stores
                .iter()
                .map(|s| serde_json::json!({"id": s.id, "name": s.name, "brand": s.brand}))
                .collect(),
            policy: t.policy,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewTenantBody {
    id: String,
    name: String,
}

/// Creates a tenant (the platform's own administrators only).
#[utoipa::path(post, path = "/v1/tenants", tag = "admin", request_body = NewTenantBody,
    responses((status = 200, body = TenantDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_tenant(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewTenantBody>,
) -> Reply<TenantDto> {
    let tenant = s
        .identity()
        .create_tenant(
            &who,
            &tenant_id(&body.id)?,
            &body.name,
            &request_id(&headers),
        )
        .await?;
    Ok(Json(tenant.into()))
}

/// A tenant with its brands, stores and security policy.
#[utoipa::path(get, path = "/v1/tenants/{tenant}", tag = "admin", params(TenantPath),
    responses((status = 200, body = TenantDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_tenant(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<TenantPath>,
) -> Reply<TenantDto> {
    let tenant = s
        .identity()
        .tenant(&who, &tenant_id(&p.tenant)?, &request_id(&headers))
        .await?;
    Ok(Json(tenant.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BrandBody {
    id: String,
    name: String,
}

/// Adds a brand to a tenant.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/brands", tag = "admin", params(TenantPath), request_body = BrandBody,
    responses((status = 200, body = TenantDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn add_brand(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<TenantPath>,
    JsonBody(body): JsonBody<BrandBody>,
) -> Reply<TenantDto> {
    let brand = Brand {
        id: BrandId::parse(body.id)?,
        name: body.name,
    };
    let tenant = s
        .identity()
        .add_brand(&who, &tenant_id(&p.tenant)?, brand, &request_id(&headers))
        .await?;
    Ok(Json(tenant.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StoreBody {
    id: String,
    name: String,
    brand: Option<String>,
}

/// Adds a store to a tenant.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/stores", tag = "admin", params(TenantPath), request_body = StoreBody,
    responses((status = 200, body = TenantDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn add_store(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<TenantPath>,
    JsonBody(body): JsonBody<StoreBody>,
) -> Reply<TenantDto> {
    let store = IdentityService::parse_store(&body.id, &body.name, body.brand.as_deref())?;
    let tenant = s
        .identity()
        .add_store(&who, &tenant_id(&p.tenant)?, store, &request_id(&headers))
        .await?;
    Ok(Json(tenant.into()))
}

/// Sets the tenant's password rules, lockout and whether staff need a second factor.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/security-policy", tag = "admin", params(TenantPath),
    request_body(content = Object, description = "`password.min_length`, `lockout.max_failures`, `lockout.lock_secs`, `require_totp`"),
    responses((status = 200, body = TenantDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn set_policy(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<TenantPath>,
    JsonBody(policy): JsonBody<SecurityPolicy>,
) -> Reply<TenantDto> {
    let tenant = s
        .identity()
        .set_policy(&who, &tenant_id(&p.tenant)?, policy, &request_id(&headers))
        .await?;
    Ok(Json(tenant.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleBody {
    /// A built-in role (`tenant_admin`, `store_manager`, `clerk`, `auditor`, `partner`) or a
    /// custom one of the tenant (`<tenant>:<name>`).
    role: String,
    /// Hold the role in one store only.
    store: Option<String>,
}

fn domain(tenant: &str, store: Option<&str>) -> String {
    match store {
        Some(store) => format!("{tenant}/{store}"),
        None => tenant.to_string(),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StaffBody {
    username: String,
    display_name: Option<String>,
    #[serde(default)]
    roles: Vec<RoleBody>,
    /// Leave out to have one generated (returned once; to be changed at first login).
    password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedStaffDto {
    staff_id: String,
    /// The generated password, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    initial_password: Option<String>,
    /// The `otpauth://` URI of the second factor, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    totp_uri: Option<String>,
}

/// Creates a staff account of the tenant with roles in the tenant or its stores.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff", tag = "admin", params(TenantPath), request_body = StaffBody,
    responses((status = 200, body = CreatedStaffDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_staff(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<TenantPath>,
    JsonBody(body): JsonBody<StaffBody>,
) -> Reply<CreatedStaffDto> {
    let tenant = tenant_id(&p.tenant)?;
    let new = NewStaff {
        display_name: body.display_name.unwrap_or_else(|| body.username.clone()),
        username: body.username,
        roles: body
            .roles
            .iter()
            .map(|r| (r.role.clone(), domain(tenant.as_str(), r.store.as_deref())))
            .collect(),
        password: body.password,
    };
    let created = s
        .identity()
        .create_staff(&who, tenant.as_str(), new, &request_id(&headers))
        .await?;
    Ok(Json(CreatedStaffDto {
        staff_id: created.id.to_string(),
        initial_password: created.initial_password,
        totp_uri: created.totp_uri,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct StaffPath {
    tenant: String,
    staff_id: String,
}

impl StaffPath {
    fn id(&self) -> Result<StaffId, ApiError> {
        Ok(StaffId::parse(&self.staff_id)?)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordDto {
    /// Shown once; to be changed at the next login.
    temporary_password: String,
}

/// Sets a generated password on a staff account, to be changed at its next login.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/{staff_id}/password-reset", tag = "admin", params(StaffPath),
    responses((status = 200, body = PasswordDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn reset_password(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<StaffPath>,
) -> Reply<PasswordDto> {
    let _ = &p.tenant;
    let temporary_password = s
        .identity()
        .reset_password(&who, p.id()?, &request_id(&headers))
        .await?;
    Ok(Json(PasswordDto { temporary_password }))
}

/// Releases a staff account locked after failed logins.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/{staff_id}/unlock", tag = "admin", params(StaffPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn unlock(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<StaffPath>,
) -> Reply<serde_json::Value> {
    s.identity()
        .unlock(&who, p.id()?, &request_id(&headers))
        .await?;
    Ok(Json(serde_json::json!({"unlocked": true})))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct GrantBody {
    /// `staff:<id>` or `key:<id>`.
    subject: String,
    role: String,
    store: Option<String>,
    /// `revoke` to take the role away; `grant` by default.
    #[serde(default)]
    revoke: bool,
}

/// Grants (or revokes) a role in the tenant or one of its stores.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/role-grants", tag = "admin", params(TenantPath), request_body = GrantBody,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn grant_role(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<TenantPath>,
    JsonBody(body): JsonBody<GrantBody>,
) -> Reply<serde_json::Value> {
    let tenant = tenant_id(&p.tenant)?;
    let domain = domain(tenant.as_str(), body.store.as_deref());
    let id = request_id(&headers);
    let changed = if body.revoke {
        s.identity()
            .revoke(
                &who,
                tenant.as_str(),
                &body.subject,
                &body.role,
                &domain,
                &id,
            )
            .await?
    } else {
        s.identity()
            .grant(
                &who,
                tenant.as_str(),
                &body.subject,
                &body.role,
                &domain,
                &id,
            )
            .await?
    };
    Ok(Json(serde_json::json!({"changed": changed})))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ApiKeyBody {
    name: String,
    roles: Vec<String>,
    /// RFC 3339; none: the key does not expire.
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyDto {
    id: String,
    /// Shown once: send it as `Authorization: Bearer <key>` or `X-Api-Key: <key>`.
    key: String,
}

/// Creates an API key for a partner system of the tenant.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/api-keys", tag = "admin", params(TenantPath), request_body = ApiKeyBody,
    responses((status = 200, body = ApiKeyDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_api_key(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<TenantPath>,
    JsonBody(body): JsonBody<ApiKeyBody>,
) -> Reply<ApiKeyDto> {
    let expires_at = body.expires_at.map(Timestamp::from_datetime);
    let key = s
        .identity()
        .create_api_key(
            &who,
            &tenant_id(&p.tenant)?,
            &body.name,
            &body.roles,
            expires_at,
            &request_id(&headers),
        )
        .await?;
    Ok(Json(ApiKeyDto {
        id: key.id.to_string(),
        key: key.key,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    tenant: String,
    key_id: String,
}

impl KeyPath {
    fn id(&self) -> Result<ApiKeyId, ApiError> {
        let _ = &self.tenant;
        Ok(ApiKeyId::parse(&self.key_id)?)
    }
}

/// Revokes an API key: it stops working at its next request.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/api-keys/{key_id}/revoke", tag = "admin", params(KeyPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn revoke_api_key(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<KeyPath>,
) -> Reply<serde_json::Value> {
    s.identity()
        .revoke_api_key(&who, p.id()?, &request_id(&headers))
        .await?;
    Ok(Json(serde_json::json!({"revoked": true})))
}

/// Replaces an API key with a new one holding the same roles; the old one is revoked.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/api-keys/{key_id}/rotate", tag = "admin", params(KeyPath),
    responses((status = 200, body = ApiKeyDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn rotate_api_key(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<KeyPath>,
) -> Reply<ApiKeyDto> {
    let key = s
        .identity()
        .rotate_api_key(&who, p.id()?, &request_id(&headers))
        .await?;
    Ok(Json(ApiKeyDto {
        id: key.id.to_string(),
        key: key.key,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The first sequence number to return (1: the oldest).
    from: Option<u64>,
    /// 1 to 1000; default 100.
    limit: Option<usize>,
}

/// The tenant's audit records, oldest first, each with its place in the hash chain.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/audit", tag = "admin", params(TenantPath, AuditQuery),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn audit(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<TenantPath>,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Reply<Vec<AuditRecord>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ServiceError::invalid("limit must be between 1 and 1000").into());
    }
    let records = s
        .identity()
        .audit_records(
            &who,
            tenant_id(&p.tenant)?.as_str(),
            q.from.unwrap_or(1),
            limit,
            &request_id(&headers),
        )
        .await?;
    Ok(Json(records))
}
