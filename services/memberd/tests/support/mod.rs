//! Starting the real `memberd` binary from tests.

pub mod burst;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starts memberd on free ports and returns it with its gRPC address, read from its stderr.
#[allow(dead_code)] // Each test binary compiles this module; not every one uses every helper.
pub async fn start(dir: &Path) -> (Child, String) {
    start_with(dir, &[]).await
}

/// Like [`start`], with extra environment variables.
pub async fn start_with(dir: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let (child, grpc, _) = start_full(dir, env).await;
    (child, grpc)
}

/// Like [`start_with`]; also returns the HTTP address (`host:port`).
pub async fn start_full(dir: &Path, env: &[(&str, &str)]) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_memberd"))
        .arg("--data-dir")
        .arg(dir)
        .env("MEMBERD_HTTP_ADDR", "127.0.0.1:0")
        .env("MEMBERD_GRPC_ADDR", "127.0.0.1:0")
        .env("MEMBERD_TELEMETRY__FILTER", "warn")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("memberd binary starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (http, addr) = tokio::time::timeout(Duration::from_secs(30), async {
        let mut http = String::new();
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            if let Some(addr) = line.strip_prefix("memberd: http listening on ") {
                http = addr.to_string();
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
    (child, format!("http://{addr}"), http)
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
