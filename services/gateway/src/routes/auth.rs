//! Logging in and out: access and refresh tokens for staff, the public key set that verifies
//! access tokens, and changing one's own password. These routes authenticate on their own
//! (there is nothing to authorize: a caller acts on their own session).

use crate::access::authenticated;
use crate::problem::{ApiError, JsonBody, Problem, QueryParams};
use crate::routes::request_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use loyalty_identity::service::PrincipalKind;
use loyalty_proto::identity::v1 as pb;
use loyalty_proto::transport::{FORWARDED, Forwarded};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(change_password))
        .routes(routes!(jwks))
        .routes(routes!(me))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    /// The tenant, or `*` for the platform's own staff.
    tenant: String,
    username: String,
    password: String,
    /// The one-time code, when the account has a second factor.
    code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokensDto {
    /// Send as `Authorization: Bearer <access_token>`.
    access_token: String,
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
    /// Works once: exchange it at `/v1/auth/refresh` for new tokens. Keep it secret.
    refresh_token: String,
    /// An administrator reset the password: change it at `/v1/auth/password` first.
    must_change_password: bool,
}

impl From<pb::Tokens> for TokensDto {
    fn from(t: pb::Tokens) -> Self {
        Self {
            access_token: t.access_token,
            token_type: "Bearer",
            expires_in: t.expires_in_secs,
            refresh_token: t.refresh_token,
            must_change_password: t.must_change_password,
        }
    }
}

/// The caller of a route that authenticates on its own, carried on to an identity service
/// in another process.
fn forwarded(credential: String, headers: &HeaderMap) -> Forwarded {
    Forwarded {
        credential,
        store: None,
        request_id: request_id(headers),
        subject: String::new(),
    }
}

/// Logs a staff member in. Five wrong passwords in a row lock the account for a while.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginBody, security(()),
    responses((status = 200, body = TokensDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Json<TokensDto>, ApiError> {
    let request = pb::LoginRequest {
        tenant: body.tenant,
        username: body.username,
        password: body.password,
        code: body.code,
        request_id: request_id(&headers),
    };
    Ok(Json(s.identity().login(request).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshBody {
    refresh_token: String,
}

/// New tokens for a refresh token. Each refresh token works once; presenting a used one
/// again ends its session.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshBody, security(()),
    responses((status = 200, body = TokensDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn refresh(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<Json<TokensDto>, ApiError> {
    let request = pb::RefreshRequest {
        refresh_token: body.refresh_token,
        request_id: request_id(&headers),
    };
    Ok(Json(s.identity().refresh(request).await?.into()))
}

/// Ends the caller's session: its access and refresh tokens stop working at once.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    let (principal, credential) = authenticated(s.identity().as_ref(), &headers).await?;
    let request = pb::LogoutRequest {
        request_id: request_id(&headers),
    };
    let logout = s.identity().logout(&principal, request);
    FORWARDED
        .scope(forwarded(credential, &headers), logout)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordBody {
    current: String,
    new: String,
}

/// Changes the caller's own password (required after an administrator's reset).
#[utoipa::path(post, path = "/v1/auth/password", tag = "auth", request_body = PasswordBody,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn change_password(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    let (principal, credential) = authenticated(s.identity().as_ref(), &headers).await?;
    let request = pb::ChangePasswordRequest {
        current: body.current,
        new: body.new,
        request_id: request_id(&headers),
    };
    let change = s.identity().change_password(&principal, request);
    FORWARDED
        .scope(forwarded(credential, &headers), change)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MeQuery {
    /// One of the tenant's stores: the grants there (roles held in that store and in the
    /// whole tenant). Leave out for the tenant's own.
    store: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeDto {
    /// `staff:<id>` or `key:<id>`.
    subject: String,
    /// The caller's tenant, or `*` for the platform's own staff.
    tenant: String,
    /// `staff`, `api_key` or `service`.
    kind: &'static str,
    /// What the caller's roles grant it, as `object:action` (e.g. `ledger.adjust:write`).
    permissions: Vec<String>,
    /// The tenant's time zone (IANA), for showing times; none: UTC.
    time_zone: Option<String>,
}

/// The caller, and what its roles grant it in its tenant or one of its stores. A console uses
/// it to show only what its user can use; every route still checks on its own. Nothing is
/// recorded in the audit log.
#[utoipa::path(get, path = "/v1/auth/me", tag = "auth", params(MeQuery),
    responses((status = 200, body = MeDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn me(
    State(s): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<MeQuery>,
) -> Result<Json<MeDto>, ApiError> {
    let (principal, credential) = authenticated(s.identity().as_ref(), &headers).await?;
    let domain = match q.store {
        Some(store) => format!("{}/{store}", principal.tenant),
        None => principal.tenant.clone(),
    };
    let request = pb::ListGrantsRequest {
        domain,
        request_id: request_id(&headers),
    };
    let grants = s.identity().list_grants(&principal, request);
    let grants = FORWARDED
        .scope(forwarded(credential, &headers), grants)
        .await?;
    let kind = match principal.kind {
        PrincipalKind::Staff { .. } => "staff",
        PrincipalKind::ApiKey { .. } => "api_key",
        PrincipalKind::System | PrincipalKind::Service => "service",
    };
    Ok(Json(MeDto {
        subject: principal.subject,
        tenant: principal.tenant,
        kind,
        permissions: grants.permissions,
        time_zone: (!grants.time_zone.is_empty()).then_some(grants.time_zone),
    }))
}

/// The public keys that verify access tokens (RFC 7517; Ed25519 keys as in RFC 8037).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", security(()),
    responses((status = 200, description = "The JSON Web Key Set")))]
async fn jwks(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let jwks = s.identity().get_jwks().await?;
    let jwks = serde_json::from_str(&jwks.json).map_err(loyalty_common::ServiceError::internal)?;
    Ok(Json(jwks))
}
