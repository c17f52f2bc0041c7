//! Authentication for the first cut of the gateway: a development bearer token read from
//! configuration. The identity service replaces this with real tokens and API keys.

use crate::problem::problem_response;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use loyalty_common::config::Secret;
use loyalty_common::error::ErrorCode;
use std::sync::Arc;

/// Accepts requests that carry `Authorization: Bearer <token>` with the configured token.
#[derive(Clone)]
pub struct DevTokenAuth {
    token: Arc<Secret>,
}

impl DevTokenAuth {
    pub fn new(token: Secret) -> Self {
        Self {
            token: Arc::new(token),
        }
    }

    fn accepts(&self, header_value: Option<&str>) -> bool {
        let Some(presented) = header_value.and_then(|v| v.strip_prefix("Bearer ")) else {
            return false;
        };
        constant_time_eq::constant_time_eq(
            presented.trim().as_bytes(),
            self.token.expose().as_bytes(),
        )
    }
}

/// Middleware: rejects unauthenticated requests with 401 problem+json.
pub async fn require_token(
    State(auth): State<DevTokenAuth>,
    request: Request,
    next: Next,
) -> Response {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !auth.accepts(value) {
        let mut response = problem_response(
            ErrorCode::Unauthenticated,
            "send Authorization: Bearer <token> with the configured gateway token".into(),
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    next.run(request).await
}
