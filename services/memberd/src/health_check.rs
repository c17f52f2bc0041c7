//! `memberd health`: asks a running memberd whether it is ready, for container health checks
//! in images that carry no shell and no HTTP client.

use std::time::Duration;

/// How long one check may take before it counts as a failure.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The readiness URL of the memberd listening on `http_addr`: a wildcard address (what a
/// container listens on) is asked on loopback.
pub fn readiness_url(http_addr: &str) -> String {
    let local = match http_addr.rsplit_once(':') {
        Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => http_addr.to_string(),
    };
    format!("http://{local}/readyz")
}

/// Ok when `url` answers 200; else what it answered, or why it could not be asked.
pub async fn check(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(CHECK_TIMEOUT)
        .build()
        .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url} did not answer ({e}); is memberd running?"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    anyhow::bail!("{url} answered {status}: {}", body.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listener_is_asked_on_loopback() {
        assert_eq!(
            readiness_url("0.0.0.0:8080"),
            "http://127.0.0.1:8080/readyz"
        );
        assert_eq!(readiness_url("[::]:9000"), "http://[::1]:9000/readyz");
        assert_eq!(
            readiness_url("10.1.2.3:8080"),
            "http://10.1.2.3:8080/readyz"
        );
    }
}
