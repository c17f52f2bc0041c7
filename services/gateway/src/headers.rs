//! Response headers every reply carries (browsers must not sniff, frame or cache the API's
//! answers; tokens travel in them), and CORS for the origins the configuration names.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The docs page needs its own inline style and script; everything else needs nothing.
const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";
const DOCS_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'";

/// Adds the security headers a response lacks.
pub async fn secure(request: Request, next: Next) -> Response {
    let docs = request.uri().path() == "/v1/docs";
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let policy = if docs { DOCS_POLICY } else { API_POLICY };
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, policy),
        (header::CACHE_CONTROL, "no-store"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    ] {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// CORS for `origins` (none: the layer answers no cross-origin request).
pub fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            "idempotency-key".parse().unwrap_or(header::AUTHORIZATION),
            "x-store-id".parse().unwrap_or(header::AUTHORIZATION),
            "x-request-id".parse().unwrap_or(header::AUTHORIZATION),
            "x-api-key".parse().unwrap_or(header::AUTHORIZATION),
        ])
        .max_age(std::time::Duration::from_secs(600))
}
