//! Starting the real `memberd` binary from tests, and ledger clients that log in to it.

pub mod apart;
pub mod burst;
pub mod cql;
pub mod link;
pub mod members;
pub mod two_dc;
pub mod two_regions;

use loyalty_proto::campaign::v1::campaign_service_client::CampaignServiceClient;
use loyalty_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The platform administrator's password in these tests.
pub const ADMIN_PASSWORD: &str = "kettle-orbit-plum-7";

/// A ledger client whose calls carry the platform administrator's access token.
pub type Ledger = LedgerServiceClient<InterceptedService<Channel, Bearer>>;

/// A campaign client whose calls carry the platform administrator's access token.
pub type Campaign = CampaignServiceClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Where a started memberd listens.
#[derive(Debug, Clone)]
pub struct Addrs {
    /// `http://host:port`
    pub grpc: String,
    /// `host:port`
    pub http: String,
}

impl Addrs {
    /// The platform administrator's access token.
    pub async fn token(&self) -> String {
        let body = format!(r#"{{"tenant":"*","username":"admin","password":"{ADMIN_PASSWORD}"}}"#);
        let reply = http_post(&self.http, "/v1/auth/login", &body).await;
        let value: serde_json::Value = serde_json::from_str(&reply).expect("a login reply");
        let token = value["access_token"].as_str().expect("an access token");
        token.to_string()
    }

    /// A ledger client logged in as the platform administrator.
    #[allow(dead_code)] // Each test binary compiles this module; not every one uses it.
    pub async fn ledger(&self) -> Ledger {
        let (channel, bearer) = self.logged_in().await;
        LedgerServiceClient::with_interceptor(channel, bearer)
    }

    /// A campaign client logged in as the platform administrator.
    #[allow(dead_code)] // Each test binary compiles this module; not every one uses it.
    pub async fn campaign(&self) -> Campaign {
        let (channel, bearer) = self.logged_in().await;
        CampaignServiceClient::with_interceptor(channel, bearer)
    }

    async fn logged_in(&self) -> (Channel, Bearer) {
        let token = self.token().await;
        let bearer = MetadataValue::try_from(format!("Bearer {token}")).expect("ascii");
        let channel = Channel::from_shared(self.grpc.clone())
            .expect("grpc address")
            .connect()
            .await
            .expect("connect");
        (channel, Bearer(bearer))
    }
}

/// Starts memberd on free ports and returns it with its addresses, read from its stderr.
#[allow(dead_code)] // Each test binary compiles this module; not every one uses every helper.
pub async fn start(dir: &Path) -> (Child, Addrs) {
    start_with(dir, &[]).await
}

/// Where a started memberd's log (its stdout) goes: `memberd.log` in its data directory, so
/// a failing test can show it ([`log_tail`]).
fn log_file(dir: &Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("memberd.log"))
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

/// The last `lines` lines of the log of the memberd started in `dir`.
#[allow(dead_code)]
pub fn log_tail(dir: &Path, lines: usize) -> String {
    let log = std::fs::read_to_string(dir.join("memberd.log")).unwrap_or_default();
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Like [`start`], with extra environment variables.
pub async fn start_with(dir: &Path, env: &[(&str, &str)]) -> (Child, Addrs) {
    start_in(dir, env, None).await
}

/// `program` as a command that first joins the cgroup whose `cgroup.procs` is `procs`: a
/// shell writes its own pid there, then becomes `program` (the same pid, so the child's id
/// and its kill are the program's). The region drill's cut (`drill/cut.rs`).
#[allow(dead_code)]
pub fn confined(procs: &Path, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("sh");
    command
        .args(["-c", r#"echo $$ >"$0" && exec "$@""#])
        .arg(procs)
        .arg(program);
    command
}

/// Like [`start_with`], in the cgroup whose `cgroup.procs` is `procs` when there is one.
pub async fn start_in(dir: &Path, env: &[(&str, &str)], procs: Option<&Path>) -> (Child, Addrs) {
    let memberd = env!("CARGO_BIN_EXE_memberd");
    let mut command = match procs {
        Some(procs) => confined(procs, memberd),
        None => Command::new(memberd),
    };
    let mut child = command
        .arg("--data-dir")
        .arg(dir)
        .env("MEMBERD_HTTP_ADDR", "127.0.0.1:0")
        .env("MEMBERD_GRPC_ADDR", "127.0.0.1:0")
        .env("MEMBERD_TELEMETRY__FILTER", "warn")
        .env("MEMBERD_IDENTITY__BOOTSTRAP_PASSWORD", ADMIN_PASSWORD)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(log_file(dir))
        .kill_on_drop(true)
        .spawn()
        .expect("memberd binary starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    // The gateway alone serves no gRPC: its HTTP address is all there is to wait for.
    let http_only = env.contains(&("MEMBERD_TARGET", "gateway"));
    let (http, addr) = tokio::time::timeout(Duration::from_secs(30), async {
        let mut http = String::new();
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            if let Some(addr) = line.strip_prefix("memberd: http listening on ") {
                http = addr.to_string();
                if http_only {
                    return (http, String::new());
                }
            }
            if let Some(addr) = line.strip_prefix("memberd: grpc listening on ") {
                return (http, addr.to_string());
            }
        }
        panic!("memberd exited before listening");
    })
    .await
    .expect("memberd listens within 30 s");
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let grpc = format!("http://{addr}");
    (child, Addrs { grpc, http })
}

/// The body of `POST path` with a JSON `body` (HTTP/1.0, so the server closes).
#[allow(dead_code)]
pub async fn http_post(http: &str, path: &str, body: &str) -> String {
    http_post_with(http, path, "", body).await.1
}

/// The status and body of `POST path` with a JSON `body` and extra header lines `headers`
/// (each ending in `\r\n`).
#[allow(dead_code)]
pub async fn http_post_with(http: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    http_send(http, "POST", path, headers, body).await
}

/// The status and body of `PUT path` with a JSON `body` and extra header lines `headers`.
#[allow(dead_code)]
pub async fn http_put_with(http: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    http_send(http, "PUT", path, headers, body).await
}

async fn http_send(
    http: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let (status, _, body) = http_exchange(http, method, path, headers, body).await;
    (status, body)
}

/// The status, the header lines and the body of a request with a JSON `body` and extra
/// header lines `headers` (each ending in `\r\n`).
#[allow(dead_code)]
pub async fn http_exchange(
    http: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(http).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {http}\r\nContent-Type: application/json\r\n\
         {headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The status and body of `GET path` with extra header lines `headers` (each ending in
/// `\r\n`).
#[allow(dead_code)]
pub async fn http_get_with(http: &str, path: &str, headers: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(http).await.expect("connect");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {http}\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// The body of `GET path` on memberd's HTTP address (HTTP/1.0, so the server closes).
#[allow(dead_code)]
pub async fn http_get(http: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(http).await.expect("connect");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {http}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_string())
}

/// Waits until `ready` holds, looking every 20 ms; fails naming `what` after `within`.
#[allow(dead_code)]
pub async fn wait_until(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
