//! The gateway: REST/JSON under `/v1`, authenticated, with problem+json errors and an OpenAPI
//! document generated from the handlers. It routes every call to a service's gRPC API.

pub mod auth;
pub mod docs;
pub mod dto;
pub mod problem;
pub mod routes;
pub mod state;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use loyalty_common::config::Secret;
use loyalty_common::error::ErrorCode;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

pub use state::{AppState, GrpcTransport};

/// Gateway settings (`[gateway]`, `MEMBERD_GATEWAY__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayConfig {
    /// The development bearer token. Unset: `memberd` generates one at start and prints it once.
    pub dev_token: Option<Secret>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Requests taking longer get 408; a retry with the same Idempotency-Key is safe.
    pub request_timeout_ms: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            dev_token: None,
            max_body_bytes: 64 * 1024,
            request_timeout_ms: 10_000,
        }
    }
}

/// The OpenAPI document for every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::with_openapi(docs::ApiDoc::openapi())
        .merge(routes::ledger::routes())
        .split_for_parts()
        .1
}

/// The `/v1` router: authenticated API routes plus the public OpenAPI document and docs page.
pub fn router(state: AppState, config: &GatewayConfig, token: Secret) -> Router {
    let (api, spec) = OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .merge(routes::ledger::routes())
        .split_for_parts();
    let api = api
        .route_layer(middleware::from_fn_with_state(
            auth::DevTokenAuth::new(token),
            auth::require_token,
        ))
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
        .fallback(|| async {
            problem::problem_response(
                ErrorCode::RouteNotFound,
                "no such route; see /v1/docs".into(),
            )
        })
        .layer(middleware::from_fn(record_metrics))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(config.request_timeout_ms),
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            problem::problem_response(ErrorCode::Internal, "internal error".into())
        }))
}

/// Counts and times requests by route template (never the raw path: it holds member ids).
async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let span = tracing::info_span!("http", method = %method, route = %route);
    let response = tracing::Instrument::instrument(next.run(request), span).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("http_request_duration_seconds", "route" => route.clone(), "method" => method.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("http_requests_total", "route" => route, "method" => method, "status" => status).increment(1);
    response.into_response()
}
