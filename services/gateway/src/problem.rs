//! RFC 9457 problem+json errors and the extractors that turn bad input into them.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loyalty_common::ServiceError;
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::IdempotencyKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// The body of every error response (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URN naming the error type; stable.
    #[schema(example = "urn:memberd:problem:INSUFFICIENT_POINTS")]
    pub r#type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The stable error code; match on this, never on text.
    #[schema(example = "INSUFFICIENT_POINTS")]
    pub code: String,
}

/// An error on its way out of a handler.
#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl<E: Into<ServiceError>> From<E> for ApiError {
    fn from(err: E) -> Self {
        ApiError(err.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem_response(self.0.code, self.0.message)
    }
}

/// Renders a problem+json response for a code.
pub fn problem_response(code: ErrorCode, detail: String) -> Response {
    let status = code.http();
    let body = Problem {
        r#type: format!("urn:memberd:problem:{}", code.as_str()),
        title: code.title().into(),
        status: status.as_u16(),
        detail,
        code: code.as_str().into(),
    };
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    // For the request metrics (`http_requests_total{code}`).
    response.extensions_mut().insert(code);
    response
}

/// JSON body extractor whose rejections are problem+json with a stable code.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(ApiError(json_rejection(rejection))),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ServiceError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ServiceError::new(
            ErrorCode::PayloadTooLarge,
            "the body exceeds the size limit",
        );
    }
    let detail = match &rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "send the body with Content-Type: application/json".to_string()
        }
        JsonRejection::JsonDataError(e) => {
            format!("the body does not match the operation: {}", source_text(e))
        }
        JsonRejection::JsonSyntaxError(e) => {
            format!("the body is not valid JSON: {}", source_text(e))
        }
        other => other.body_text(),
    };
    ServiceError::new(ErrorCode::MalformedBody, detail)
}

/// serde's message (e.g. "missing field `points` at line 1 column 2") without axum's prefix.
fn source_text(err: &dyn std::error::Error) -> String {
    let mut inner = err;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// The `Idempotency-Key` header, required on every POST.
pub struct IdempotencyKeyHeader(pub IdempotencyKey);

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(IDEMPOTENCY_HEADER).ok_or_else(|| {
            ServiceError::new(
                ErrorCode::IdempotencyKeyMissing,
                "send an Idempotency-Key header (1 to 128 letters, digits, '-', '_' or '.') with every POST",
            )
        })?;
        let text = value
            .to_str()
            .map_err(|_| ServiceError::invalid("the Idempotency-Key header must be ASCII"))?;
        Ok(IdempotencyKeyHeader(IdempotencyKey::parse(text)?))
    }
}

/// Query-string extractor whose rejections are problem+json.
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|e| {
                ApiError(ServiceError::invalid(format!(
                    "bad query string: {}",
                    source_text(&e)
                )))
            })
    }
}
