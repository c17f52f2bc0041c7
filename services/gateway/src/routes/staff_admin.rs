//! Administration, continued: a tenant's staff accounts (listed, read, renamed, deactivated
//! and reactivated), its API keys (listed and read, never the key itself), the roles its
//! staff and keys can hold, and the check of its audit log. A staff account or key is
//! answered under its own tenant's path only.

use crate::problem::{ApiError, JsonBody, Problem};
use crate::routes::TenantPath;
use crate::routes::admin::{KeyPath, StaffPath, tenant_id};
use crate::routes::request_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use loyalty_common::error::ErrorCode;
use loyalty_common::{ServiceError, Timestamp};
use loyalty_identity::service::Principal;
use loyalty_proto::identity::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Reply<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_staff))
        .routes(routes!(get_staff, update_staff))
        .routes(routes!(deactivate_staff))
        .routes(routes!(reactivate_staff))
        .routes(routes!(list_api_keys))
        .routes(routes!(get_api_key))
        .routes(routes!(list_roles))
        .routes(routes!(verify_audit))
}

fn at(ms: i64) -> Option<DateTime<Utc>> {
    (ms > 0).then(|| Timestamp(ms).to_datetime())
}

fn not_in_tenant(what: &str) -> ApiError {
    ServiceError::new(
        ErrorCode::NotFound,
        format!("no such {what} in this tenant"),
    )
    .into()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleHeldDto {
    role: String,
    /// The store the role is held in; none: the whole tenant.
    store: Option<String>,
}

/// A staff account: never its password or second factor's secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffDto {
    id: String,
    username: String,
    display_name: String,
    roles: Vec<RoleHeldDto>,
    /// False: deactivated; its tokens are refused and it cannot log in.
    active: bool,
    /// Locked after failed logins until then.
    locked_until: Option<DateTime<Utc>>,
    /// Logs in with a one-time code as well.
    second_factor: bool,
    must_change_password: bool,
    created_at: Option<DateTime<Utc>>,
}

impl StaffDto {
    /// The account, if it belongs to `tenant`.
    fn of(member: pb::StaffMember, tenant: &str) -> Result<Self, ApiError> {
        if member.tenant != tenant {
            return Err(not_in_tenant("staff account"));
        }
        let store_prefix = format!("{tenant}/");
        Ok(Self {
            roles: member
                .roles
                .into_iter()
                .map(|r| RoleHeldDto {
                    store: r.domain.strip_prefix(&store_prefix).map(String::from),
                    role: r.role,
                })
                .collect(),
            id: member.id,
            username: member.username,
            display_name: member.display_name,
            active: member.active,
            locked_until: at(member.locked_until_ms),
            second_factor: member.second_factor,
            must_change_password: member.must_change_password,
            created_at: at(member.created_at_ms),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StaffListDto {
    staff: Vec<StaffDto>,
}

/// The tenant's staff accounts, by username, with the roles each holds.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff", tag = "admin", params(TenantPath),
    responses((status = 200, body = StaffListDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_staff(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<TenantPath>,
) -> Reply<StaffListDto> {
    let tenant = tenant_id(&p.tenant)?;
    let request = pb::TenantRef {
        tenant_id: tenant.clone(),
        request_id: request_id(&headers),
    };
    let listed = s.identity().list_staff(&who, request).await?;
    let staff = listed
        .staff
        .into_iter()
        .map(|m| StaffDto::of(m, &tenant))
        .collect::<Result<_, _>>()?;
    Ok(Json(StaffListDto { staff }))
}

/// One staff account of the tenant.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/{staff_id}", tag = "admin", params(StaffPath),
    responses((status = 200, body = StaffDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_staff(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<StaffPath>,
) -> Reply<StaffDto> {
    let tenant = tenant_id(&p.tenant)?;
    let member = s.identity().get_staff(&who, p.staff(&headers)).await?;
    Ok(Json(StaffDto::of(member, &tenant)?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffChangeBody {
    display_name: Option<String>,
}

/// Changes a staff account's display name (roles change at `role-grants`).
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/staff/{staff_id}", tag = "admin", params(StaffPath), request_body = StaffChangeBody,
    responses((status = 200, body = StaffDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn update_staff(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<StaffPath>,
    JsonBody(body): JsonBody<StaffChangeBody>,
) -> Reply<StaffDto> {
    let tenant = tenant_id(&p.tenant)?;
    // Read first: an account of another tenant is not changed under this one's path.
    StaffDto::of(
        s.identity().get_staff(&who, p.staff(&headers)).await?,
        &tenant,
    )?;
    let request = pb::UpdateStaffRequest {
        staff_id: p.staff_id.clone(),
        display_name: body.display_name,
        request_id: request_id(&headers),
    };
    let member = s.identity().update_staff(&who, request).await?;
    Ok(Json(StaffDto::of(member, &tenant)?))
}

async fn set_active(
    s: &AppState,
    who: &Principal,
    headers: &HeaderMap,
    p: &StaffPath,
    active: bool,
) -> Reply<StaffDto> {
    let tenant = tenant_id(&p.tenant)?;
    StaffDto::of(
        s.identity().get_staff(who, p.staff(headers)).await?,
        &tenant,
    )?;
    let request = pb::SetStaffActiveRequest {
        staff_id: p.staff_id.clone(),
        active,
        request_id: request_id(headers),
    };
    let member = s.identity().set_staff_active(who, request).await?;
    Ok(Json(StaffDto::of(member, &tenant)?))
}

/// Deactivates a staff account: its tokens are refused at once and it cannot log in. Nobody
/// deactivates their own account.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/{staff_id}/deactivate", tag = "admin", params(StaffPath),
    responses((status = 200, body = StaffDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn deactivate_staff(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<StaffPath>,
) -> Reply<StaffDto> {
    set_active(&s, &who, &headers, &p, false).await
}

/// Reactivates a deactivated staff account: it can log in again.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/{staff_id}/reactivate", tag = "admin", params(StaffPath),
    responses((status = 200, body = StaffDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn reactivate_staff(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<StaffPath>,
) -> Reply<StaffDto> {
    set_active(&s, &who, &headers, &p, true).await
}

/// An API key: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyInfoDto {
    id: String,
    name: String,
    roles: Vec<String>,
    created_at: Option<DateTime<Utc>>,
    /// `staff:<id>` of whoever made it.
    created_by: String,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    /// Set once revoked (or replaced by a rotation).
    revoked_at: Option<DateTime<Utc>>,
}

impl From<pb::ApiKeyInfo> for ApiKeyInfoDto {
    fn from(k: pb::ApiKeyInfo) -> Self {
        Self {
            id: k.id,
            name: k.name,
            roles: k.roles,
            created_at: at(k.created_at_ms),
            created_by: k.created_by,
            expires_at: at(k.expires_at_ms),
            last_used_at: at(k.last_used_at_ms),
            revoked_at: at(k.revoked_at_ms),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeysDto {
    keys: Vec<ApiKeyInfoDto>,
}

/// The tenant's API keys, newest first, revoked ones included.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/api-keys", tag = "admin", params(TenantPath),
    responses((status = 200, body = ApiKeysDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_api_keys(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<TenantPath>,
) -> Reply<ApiKeysDto> {
    let request = pb::TenantRef {
        tenant_id: tenant_id(&p.tenant)?,
        request_id: request_id(&headers),
    };
    let listed = s.identity().list_api_keys(&who, request).await?;
    Ok(Json(ApiKeysDto {
        keys: listed.keys.into_iter().map(Into::into).collect(),
    }))
}

/// One API key of the tenant.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/api-keys/{key_id}", tag = "admin", params(KeyPath),
    responses((status = 200, body = ApiKeyInfoDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_api_key(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<KeyPath>,
) -> Reply<ApiKeyInfoDto> {
    let tenant = tenant_id(&p.tenant)?;
    let request = pb::ApiKeyRef {
        api_key_id: p.key_id,
        request_id: request_id(&headers),
    };
    let key = s.identity().get_api_key(&who, request).await?;
    if key.tenant != tenant {
        return Err(not_in_tenant("API key"));
    }
    Ok(Json(key.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleDto {
    name: String,
    built_in: bool,
    /// `object:action`, with `*` for both actions.
    permissions: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RolesDto {
    roles: Vec<RoleDto>,
}

/// The roles the tenant's staff and keys can hold, built-in ones first, with what each
/// allows.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/roles", tag = "admin", params(TenantPath),
    responses((status = 200, body = RolesDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_roles(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<TenantPath>,
) -> Reply<RolesDto> {
    let request = pb::TenantRef {
        tenant_id: tenant_id(&p.tenant)?,
        request_id: request_id(&headers),
    };
    let listed = s.identity().list_roles(&who, request).await?;
    Ok(Json(RolesDto {
        roles: listed
            .roles
            .into_iter()
            .map(|r| RoleDto {
                name: r.name,
                built_in: r.built_in,
                permissions: r.permissions,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditVerificationDto {
    /// Every record follows the one before it, unaltered, up to the stored head.
    intact: bool,
    /// How many records checked out.
    records: u64,
    /// The first record that does not, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    broken_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

/// Checks the tenant's audit log: every record against the one before it and against its
/// hash, up to the stored head (as `memberd audit verify` does for every tenant).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/audit/verification", tag = "admin", params(TenantPath),
    responses((status = 200, body = AuditVerificationDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn verify_audit(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<TenantPath>,
) -> Reply<AuditVerificationDto> {
    let request = pb::TenantRef {
        tenant_id: tenant_id(&p.tenant)?,
        request_id: request_id(&headers),
    };
    let checked = s.identity().verify_audit(&who, request).await?;
    Ok(Json(AuditVerificationDto {
        intact: checked.intact,
        records: checked.records,
        broken_at: (!checked.intact).then_some(checked.broken_at),
        problem: (!checked.intact).then_some(checked.problem),
    }))
}
