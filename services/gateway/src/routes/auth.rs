//! Logging in and out: access and refresh tokens for staff, the public key set that verifies
//! access tokens, and changing one's own password. These routes authenticate on their own
//! (there is nothing to authorize: a caller acts on their own session).

use crate::access::authenticated;
use crate::problem::{ApiError, JsonBody, Problem};
use crate::routes::request_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use loyalty_identity::service::LoggedIn;
use loyalty_identity::tokens::Jwks;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(change_password))
        .routes(routes!(jwks))
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

fn tokens(s: &AppState, logged_in: LoggedIn) -> TokensDto {
    let now = s.identity().now();
    TokensDto {
        access_token: logged_in.access_token,
        token_type: "Bearer",
        expires_in: (logged_in.access_expires_at.0 - now.0).div_euclid(1000),
        refresh_token: logged_in.refresh_token,
        must_change_password: logged_in.must_change_password,
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
    let logged_in = s
        .identity()
        .login(
            &body.tenant,
            &body.username,
            &body.password,
            body.code.as_deref(),
            &request_id(&headers),
        )
        .await?;
    Ok(Json(tokens(&s, logged_in)))
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
    let logged_in = s
        .identity()
        .refresh(&body.refresh_token, &request_id(&headers))
        .await?;
    Ok(Json(tokens(&s, logged_in)))
}

/// Ends the caller's session: its access and refresh tokens stop working at once.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    let principal = authenticated(s.identity(), &headers).await?;
    s.identity()
        .logout(&principal, &request_id(&headers))
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
    let principal = authenticated(s.identity(), &headers).await?;
    s.identity()
        .change_password(&principal, &body.current, &body.new, &request_id(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The public keys that verify access tokens (RFC 7517; Ed25519 keys as in RFC 8037).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", security(()),
    responses((status = 200, description = "The JSON Web Key Set")))]
async fn jwks(State(s): State<AppState>) -> Json<Jwks> {
    Json(s.identity().jwks().clone())
}
