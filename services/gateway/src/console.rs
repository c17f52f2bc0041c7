//! The console at `/console`: a browser application for head office and store staff, built
//! into the binary (no build step, no files to deploy; decision 0020). It is a client of the
//! `/v1` API like any other: it logs in at `/v1/auth/login`, asks `/v1/auth/me` what to show,
//! and every screen calls the same guarded routes, so the server refuses what a role does not
//! grant whatever the page shows.
//!
//! Pages are one document (`index.html`) whose script draws the screen the path names; any
//! path under `/console` that is not a file answers with it. Files are answered compressed
//! when the browser accepts it, with an `ETag` to revalidate, under a content security policy
//! that runs the console's own scripts and styles only.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::Embed;
use tower_http::compression::CompressionLayer;

#[derive(Embed)]
#[folder = "console/"]
struct Files;

/// Own scripts, styles and calls only; no frames, no plugins, no inline code.
const CONSOLE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
frame-ancestors 'none'";

/// The console's routes (no state: every answer is a file).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/console",
            get(|headers: HeaderMap| async move { page(&headers) }),
        )
        .route(
            "/console/",
            get(|headers: HeaderMap| async move { page(&headers) }),
        )
        .route("/console/{*path}", get(file))
        .layer(CompressionLayer::new())
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match Files::get(&path) {
        Some(found) => answer(found, &headers),
        // A screen's path (`/console/members/m1`) is the page; a missing file is not.
        None if !path.rsplit('/').next().unwrap_or("").contains('.') => page(&headers),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

fn page(headers: &HeaderMap) -> Response {
    match Files::get("index.html") {
        Some(found) => answer(found, headers),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "the console is missing").into_response(),
    }
}

fn answer(file: rust_embed::EmbeddedFile, headers: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let status = if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let body = if fresh {
        Vec::new()
    } else {
        file.data.into_owned()
    };
    let mut response = (status, body).into_response();
    let out = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(file.metadata.mimetype()) {
        out.insert(header::CONTENT_TYPE, mime);
    }
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, etag);
    }
    // Revalidated on every load: a new release's files are used at once.
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_POLICY),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        routes::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_screen_path_is_the_page_and_a_missing_file_is_not_found() {
        for path in ["/console", "/console/", "/console/members/m1"] {
            let response = get(path, &[]).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let kind = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
            assert!(kind.starts_with("text/html"), "{path}: {kind}");
        }
        let missing = get("/console/assets/nothing.js", &[]).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn files_carry_the_policy_revalidate_and_compress() {
        let first = get("/console/assets/app.js", &[("accept-encoding", "gzip")]).await;
        assert_eq!(first.status(), StatusCode::OK);
        let headers = first.headers();
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONSOLE_POLICY);
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .contains("javascript")
        );
        let etag = headers[header::ETAG].to_str().unwrap().to_string();
        let again = get("/console/assets/app.js", &[("if-none-match", &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
}
