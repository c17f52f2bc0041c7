//! The gateway: REST/JSON under `/v1`, authenticated and authorized route by route
//! ([`access`]), with problem+json errors and an OpenAPI document generated from the handlers,
//! and the staff's console at `/console` ([`console`]).
//! It routes every call to a service's gRPC API, or to the identity service.

pub mod access;
mod console;
pub mod docs;
pub mod dto;
mod headers;
pub mod limits;
pub mod limits_redis;
pub mod problem;
pub mod regions;
mod replay;
pub mod routes;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use loyalty_common::error::ErrorCode;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

pub use state::AppState;

/// Gateway settings (`[gateway]`, `MEMBERD_GATEWAY__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayConfig {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Requests taking longer get 408; a retry with the same Idempotency-Key is safe.
    pub request_timeout_ms: u64,
    pub rate_limits: limits::RateLimitConfig,
    /// Browser origins allowed to call the API (CORS), e.g. `https://console.acme.cn`. Empty:
    /// none (same-origin only).
    pub cors_origins: Vec<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout_ms: 10_000,
            rate_limits: limits::RateLimitConfig::default(),
            cors_origins: Vec::new(),
        }
    }
}

/// Routes that authenticate on their own, or need no authentication: logging in and out, the
/// key set. Every other route is in [`access::ROUTES`].
pub const PUBLIC_ROUTES: &[&str] = &[
    "/v1/auth/login",
    "/v1/auth/refresh",
    "/v1/auth/logout",
    "/v1/auth/password",
    "/v1/auth/me",
    "/.well-known/jwks.json",
];

/// The routes behind the access guard.
fn guarded() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::ledger::routes())
        .merge(routes::members::routes())
        .merge(routes::member_list::routes())
        .merge(routes::member_orders::routes())
        .merge(routes::member_program::routes())
        .merge(routes::segments::routes())
        .merge(routes::merges::routes())
        .merge(routes::admin::routes())
        .merge(routes::tenant_settings::routes())
        .merge(routes::staff_admin::routes())
        .merge(routes::coupons::routes())
        .merge(routes::coupon_redemptions::routes())
        .merge(routes::flash_sales::routes())
        .merge(routes::campaigns::routes())
        .merge(routes::referrals::routes())
        .merge(routes::mall::routes())
        .merge(routes::lucky_draws::routes())
}

/// The OpenAPI document for every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::with_openapi(docs::ApiDoc::openapi())
        .merge(guarded())
        .merge(routes::auth::routes())
        .split_for_parts()
        .1
}

/// The `/v1` router: guarded API routes, the login routes, the OpenAPI document and docs page.
/// `limits` counts requests against the rate limits ([`limits::rate_limits`]).
pub fn router(
    state: AppState,
    config: &GatewayConfig,
    limits: std::sync::Arc<dyn limits::RateLimits>,
) -> Router {
    let guard = access::Guard {
        identity: std::sync::Arc::clone(state.identity()),
        limits,
    };
    build(state, config, Some(guard))
}

/// For the benchmark of what the guard costs only (`loadtest/bench-rest-auth.sh`): the same
/// router with no authentication, authorization, rate limit or audit. It exists only in
/// builds with the `bench-unguarded` feature, never in a release.
#[cfg(feature = "bench-unguarded")]
pub fn router_unguarded(state: AppState, config: &GatewayConfig) -> Router {
    build(state, config, None)
}

fn build(state: AppState, config: &GatewayConfig, guard: Option<access::Guard>) -> Router {
    let replays = replay::Replays {
        identity: std::sync::Arc::clone(state.identity()),
        max_body_bytes: config.max_body_bytes,
        in_flight: std::sync::Arc::default(),
    };
    // The ledger keeps its own idempotency records; administration is made idempotent here.
    let admin = routes::admin::routes()
        .merge(routes::tenant_settings::routes())
        .merge(routes::staff_admin::routes())
        .merge(routes::members::routes())
        .merge(routes::member_program::routes())
        .merge(routes::segments::routes())
        .merge(routes::merges::routes())
        .route_layer(middleware::from_fn_with_state(replays, replay::replay));
    // Orders are idempotent by their order id, like the ledger's writes by theirs; coupons
    // by their issue keys, batch ids and redemption ids; flash sales by their ids and claims
    // by theirs.
    let (api, spec) = OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .merge(routes::ledger::routes())
        .merge(routes::member_list::routes())
        .merge(routes::member_orders::routes())
        .merge(routes::coupons::routes())
        .merge(routes::coupon_redemptions::routes())
        .merge(routes::flash_sales::routes())
        .merge(routes::campaigns::routes())
        .merge(routes::referrals::routes())
        .merge(routes::mall::routes())
        .merge(routes::lucky_draws::routes())
        .merge(admin)
        .split_for_parts();
    let (auth, auth_spec) = routes::auth::routes().split_for_parts();
    let mut spec = spec;
    spec.merge(auth_spec);
    let api = match guard {
        Some(guard) => api.route_layer(middleware::from_fn_with_state(guard, access::guard)),
        None => api,
    };
    let api = api
        .merge(auth)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state);
    let spec = std::sync::Arc::new(spec);
    Router::new()
        .merge(api)
        .route(
            "/v1/openapi.json",
            get(move || async move { Json(spec.as_ref().clone()) }),
        )
        .route("/v1/docs", get(|| async { Html(docs::DOCS_PAGE) }))
        .merge(console::routes())
        .fallback(|| async {
            problem::problem_response(
                ErrorCode::RouteNotFound,
                "no such route; see /v1/docs".into(),
            )
        })
        .layer(middleware::from_fn(record_metrics))
        .layer(headers::cors(&config.cors_origins))
        .layer(middleware::from_fn(headers::secure))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(config.request_timeout_ms),
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            problem::problem_response(ErrorCode::Internal, "internal error".into())
        }))
}

/// Counts and times requests by route template (never the raw path: it holds member ids), each
/// in a server span named after its method and route template, whose parent is the caller's
/// W3C `traceparent` when the request carries one (and the trace is exported).
async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    // The OpenTelemetry fields stay empty (and out of the log lines) unless traces are
    // exported.
    let span = tracing::info_span!(
        "http",
        method = %method,
        route = %route,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    let traced = loyalty_telemetry::propagation::is_on();
    if traced {
        span.record("otel.name", format_args!("{method} {route}"));
        span.record("otel.kind", "server");
        loyalty_telemetry::propagation::set_remote_parent(&span, request.headers());
    }
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    if traced {
        span.record("http.response.status_code", response.status().as_u16());
    }
    let status = response.status().as_u16().to_string();
    // The stable code of a problem+json answer; an error answered by a layer before the
    // routes (a timeout, say) has none.
    let code = match response.extensions().get::<ErrorCode>() {
        Some(code) => code.as_str(),
        None if response.status().as_u16() < 400 => "OK",
        None => "UNCLASSIFIED",
    };
    metrics::histogram!("http_request_duration_seconds", "route" => route.clone(), "method" => method.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("http_requests_total", "route" => route, "method" => method, "status" => status, "code" => code)
        .increment(1);
    response.into_response()
}
