//! Starting the real `memberd` binary from tests.

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_memberd"))
        .arg("--data-dir")
        .arg(dir)
        .env("MEMBERD_HTTP_ADDR", "127.0.0.1:0")
        .env("MEMBERD_GRPC_ADDR", "127.0.0.1:0")
        .env("MEMBERD_GATEWAY__DEV_TOKEN", "crash-test-token")
        .env("MEMBERD_TELEMETRY__FILTER", "warn")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("memberd binary starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            if let Some(addr) = line.strip_prefix("memberd: grpc listening on ") {
                return addr.to_string();
            }
        }
        panic!("memberd exited before listening");
    })
    .await
    .expect("memberd listens within 30 s");
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{addr}"))
}
