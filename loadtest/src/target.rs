//! The benchmark target: only loopback addresses are accepted, and connections are opened
//! eagerly so a wrong address fails before any phase starts.

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};

/// Hosts a target URL may name. The load generator must never point at another machine.
const LOOPBACK_HOSTS: &[&str] = &["127.0.0.1", "localhost", "[::1]", "::1"];

/// Checks that `target` is an `http://` URL whose host is loopback, and returns it parsed.
pub fn loopback_uri(target: &str) -> Result<Uri> {
    let uri: Uri = target
        .parse()
        .with_context(|| format!("--target {target:?} is not a valid URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => bail!("--target {target:?}: scheme {other:?} is not supported; use http://"),
        None => bail!("--target {target:?} needs a scheme, e.g. http://127.0.0.1:50051"),
    }
    let host = uri.host().unwrap_or_default();
    if !LOOPBACK_HOSTS.contains(&host) {
        bail!(
            "--target {target:?}: host {host:?} is not loopback; only 127.0.0.1, localhost and \
             [::1] are allowed"
        );
    }
    Ok(uri)
}

/// Checks that a listen address is on the loopback interface.
pub fn loopback_addr(addr: SocketAddr) -> Result<SocketAddr> {
    if !addr.ip().is_loopback() {
        bail!("--addr {addr}: only loopback addresses (127.0.0.1, [::1]) are allowed");
    }
    Ok(addr)
}

/// A connection whose calls carry the credential, if any.
pub type Conn = InterceptedService<Channel, Credential>;

/// How a client reaches the server: the ledger's gRPC port, or the gateway's REST API.
#[derive(Clone)]
pub enum Link {
    Grpc(Conn),
    Rest(crate::rest::RestConn),
}

/// `authorization: Bearer <access token or API key>` on every call (memberd checks every gRPC
/// caller).
#[derive(Clone, Default)]
pub struct Credential(Option<MetadataValue<Ascii>>);

impl Credential {
    pub fn bearer(token: Option<&str>) -> Result<Self> {
        token
            .filter(|t| !t.is_empty())
            .map(|t| MetadataValue::try_from(format!("Bearer {t}")))
            .transpose()
            .context("--token must be ASCII")
            .map(Self)
    }
}

impl Interceptor for Credential {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Opens `count` independent HTTP/2 connections to `uri`. One connection is served by one
/// task on the server and serialises its frames, so load is spread over several.
pub async fn connect(
    uri: &Uri,
    count: usize,
    request_timeout: Duration,
    credential: &Credential,
) -> Result<Vec<Conn>> {
    let mut channels = Vec::with_capacity(count);
    for i in 0..count {
        let channel = Endpoint::from(uri.clone())
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(request_timeout)
            .connect()
            .await
            .with_context(|| {
                format!("cannot connect to {uri} (connection {} of {count})", i + 1)
            })?;
        channels.push(InterceptedService::new(channel, credential.clone()));
    }
    Ok(channels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_loopback_http() {
        assert!(loopback_uri("http://127.0.0.1:50051").is_ok());
        assert!(loopback_uri("http://localhost:50051").is_ok());
        assert!(loopback_uri("http://[::1]:50051").is_ok());
        assert!(loopback_uri("http://10.0.0.1:50051").is_err());
        assert!(loopback_uri("http://example.com").is_err());
        assert!(loopback_uri("http://127.0.0.1.example.com:80").is_err());
        assert!(loopback_uri("https://127.0.0.1:50051").is_err());
        assert!(loopback_uri("127.0.0.1:50051").is_err());
    }

    #[test]
    fn listen_address_must_be_loopback() {
        assert!(loopback_addr("127.0.0.1:0".parse().unwrap()).is_ok());
        assert!(loopback_addr("[::1]:0".parse().unwrap()).is_ok());
        assert!(loopback_addr("0.0.0.0:0".parse().unwrap()).is_err());
    }
}
