//! Test support (feature `testing`): a throwaway `nats-server -js` on a free loopback port, with
//! its own store directory, and a reader of a service's stream.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test support: a panic is a failed test.

use crate::Envelope;
use async_nats::jetstream;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    store: PathBuf,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            child: None,
            port,
            store: dir.path().to_path_buf(),
            _dir: dir,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and store.
    pub async fn restart(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server is installed (tests/run.sh installs it)");
        self.child = Some(child);
        wait_until_listening(self.port, "nats-server").await;
    }

    /// Stops the server with SIGTERM, so it writes its state out (JetStream keeps consumer
    /// acknowledgements in memory for a while; a SIGKILL may lose the latest), keeping its
    /// store.
    pub async fn stop_gracefully(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let status = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await
                    .unwrap();
                assert!(status.success(), "kill -TERM {pid}");
            }
            child.wait().await.unwrap();
        }
    }

    /// Kills the server (SIGKILL), keeping its store.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }

    pub async fn jetstream(&self) -> jetstream::Context {
        jetstream::new(async_nats::connect(self.url()).await.unwrap())
    }
}

/// Starts `nats-server -c config` (its output dropped; killed when the child is dropped) and
/// waits until it listens on loopback `port`, which the config names.
pub async fn nats_server_with_config(config: &std::path::Path, port: u16) -> Child {
    let child = Command::new("nats-server")
        .arg("-c")
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("nats-server is installed (tests/run.sh installs it)");
    wait_until_listening(port, "nats-server").await;
    child
}

/// Waits up to 10 s for `what` to accept connections on loopback `port`.
pub async fn wait_until_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every event in the ledger's stream, oldest first, once the stream holds at least `expect`
/// messages (or after `wait`, whatever it holds then).
pub async fn ledger_events(js: &jetstream::Context, expect: u64, wait: Duration) -> Vec<Envelope> {
    let events = stream_events(js, "LOYALTY_LEDGER", expect, wait).await;
    events
        .into_iter()
        .map(|(subject, event)| {
            assert_eq!(subject, event.nats_subject());
            event
        })
        .collect()
}

/// Every event in stream `name` with its subject, as [`ledger_events`].
pub async fn stream_events(
    js: &jetstream::Context,
    name: &str,
    expect: u64,
    wait: Duration,
) -> Vec<(String, Envelope)> {
    let deadline = Instant::now() + wait;
    let mut stream = loop {
        match js.get_stream(name).await {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("no stream {name}: {e}"),
        }
    };
    let state = loop {
        let state = stream.info().await.unwrap().state.clone();
        if state.messages >= expect || Instant::now() >= deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut events = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        let message = stream.get_raw_message(seq).await.unwrap();
        let event: Envelope = serde_json::from_slice(&message.payload).unwrap();
        events.push((message.subject.to_string(), event));
    }
    events
}
