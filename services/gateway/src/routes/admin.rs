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
use loyalty_common::ids::TenantId;
use loyalty_identity::policy::SecurityPolicy;
use loyalty_identity::service::Principal;
use loyalty_proto::identity::v1 as pb;
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

pub(crate) fn tenant_id(tenant: &str) -> Result<String, ApiError> {
    Ok(TenantId::parse(tenant)?.to_string())
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
    /// IANA; none: UTC.
    time_zone: Option<String>,
    created_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl TryFrom<pb::Tenant> for TenantDto {
    type Error = ApiError;

    fn try_from(t: pb::Tenant) -> Result<Self, ApiError> {
        let policy = serde_json::from_str(&t.policy_json).map_err(ServiceError::internal)?;
        Ok(Self {
            id: t.id,
            name: t.name,
            brands: t
                .brands
                .iter()
                .map(|b| serde_json::json!({"id": b.id, "name": b.name, "active": !b.inactive}))
                .collect(),
            stores: t
                .stores
                .iter()
                .map(|s| {
                    let brand = (!s.brand.is_empty()).then_some(&s.brand);
                    serde_json::json!({"id": s.id, "name": s.name, "brand": brand, "active": !s.inactive})
                })
                .collect(),
            policy,
            time_zone: (!t.time_zone.is_empty()).then_some(t.time_zone),
            created_at: (t.created_at_ms > 0).then(|| Timestamp(t.created_at_ms).to_datetime()),
        })
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
    let request = pb::CreateTenantRequest {
        tenant_id: tenant_id(&body.id)?,
        name: body.name,
        request_id: request_id(&headers),
    };
    Ok(Json(
        s.identity()
            .create_tenant(&who, request)
            .await?
            .try_into()?,
    ))
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
    let request = pb::TenantRef {
        tenant_id: tenant_id(&p.tenant)?,
        request_id: request_id(&headers),
    };
    Ok(Json(
        s.identity().get_tenant(&who, request).await?.try_into()?,
    ))
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
    let request = pb::AddBrandRequest {
        tenant_id: tenant_id(&p.tenant)?,
        brand: Some(pb::Brand {
            id: body.id,
            name: body.name,
            inactive: false,
        }),
        request_id: request_id(&headers),
    };
    Ok(Json(
        s.identity().add_brand(&who, request).await?.try_into()?,
    ))
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
    let request = pb::AddStoreRequest {
        tenant_id: tenant_id(&p.tenant)?,
        store: Some(pb::Store {
            id: body.id,
            name: body.name,
            brand: body.brand.unwrap_or_default(),
            inactive: false,
        }),
        request_id: request_id(&headers),
    };
    Ok(Json(
        s.identity().add_store(&who, request).await?.try_into()?,
    ))
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
    let request = pb::SetSecurityPolicyRequest {
        tenant_id: tenant_id(&p.tenant)?,
        policy_json: serde_json::to_string(&policy).map_err(ServiceError::internal)?,
        request_id: request_id(&headers),
    };
    let tenant = s.identity().set_security_policy(&who, request).await?;
    Ok(Json(tenant.try_into()?))
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
    let request = pb::CreateStaffRequest {
        display_name: body.display_name.unwrap_or_else(|| body.username.clone()),
        username: body.username,
        roles: body
            .roles
            .iter()
            .map(|r| pb::RoleInDomain {
                role: r.role.clone(),
                domain: domain(&tenant, r.store.as_deref()),
            })
            .collect(),
        password: body.password,
        tenant_id: tenant,
        request_id: request_id(&headers),
    };
    let created = s.identity().create_staff(&who, request).await?;
    Ok(Json(CreatedStaffDto {
        staff_id: created.staff_id,
        initial_password: created.initial_password,
        totp_uri: created.totp_uri,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct StaffPath {
    pub(crate) tenant: String,
    pub(crate) staff_id: String,
}

impl StaffPath {
    pub(crate) fn staff(&self, headers: &HeaderMap) -> pb::StaffRef {
        pb::StaffRef {
            staff_id: self.staff_id.clone(),
            request_id: request_id(headers),
        }
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
    let reset = s.identity().reset_password(&who, p.staff(&headers)).await?;
    Ok(Json(PasswordDto {
        temporary_password: reset.password,
    }))
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
    s.identity().unlock(&who, p.staff(&headers)).await?;
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
    let request = pb::ChangeRoleRequest {
        domain: domain(&tenant, body.store.as_deref()),
        tenant_id: tenant,
        subject: body.subject,
        role: body.role,
        revoke: body.revoke,
        request_id: request_id(&headers),
    };
    let changed = s.identity().change_role(&who, request).await?.changed;
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
    let request = pb::CreateApiKeyRequest {
        tenant_id: tenant_id(&p.tenant)?,
        name: body.name,
        roles: body.roles,
        expires_at_ms: expires_at.map_or(0, |t| t.0),
        request_id: request_id(&headers),
    };
    let key = s.identity().create_api_key(&who, request).await?;
    Ok(Json(ApiKeyDto {
        id: key.id,
        key: key.key,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    pub(crate) tenant: String,
    pub(crate) key_id: String,
}

impl KeyPath {
    fn key(&self, headers: &HeaderMap) -> pb::ApiKeyRef {
        let _ = &self.tenant;
        pb::ApiKeyRef {
            api_key_id: self.key_id.clone(),
            request_id: request_id(headers),
        }
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
    s.identity().revoke_api_key(&who, p.key(&headers)).await?;
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
    let key = s.identity().rotate_api_key(&who, p.key(&headers)).await?;
    Ok(Json(ApiKeyDto {
        id: key.id,
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
) -> Reply<Vec<serde_json::Value>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ServiceError::invalid("limit must be between 1 and 1000").into());
    }
    let request = pb::ListAuditRecordsRequest {
        tenant_id: tenant_id(&p.tenant)?,
        from: q.from.unwrap_or(1),
        limit: limit as u32,
        request_id: request_id(&headers),
    };
    let records = s.identity().list_audit_records(&who, request).await?;
    let records = records
        .records
        .iter()
        .map(|r| serde_json::from_str(&r.json));
    let records = records.collect::<Result<_, _>>();
    Ok(Json(records.map_err(ServiceError::internal)?))
}
