//! The NATS adapter against a `nats-server -js` that demands TLS with a client certificate
//! (mutual TLS) and a user and password, all from `NatsConfig`: it publishes with the right
//! credentials and is refused without the client certificate or with a wrong password.
//! The certificates are made for the test (rcgen), valid for 127.0.0.1.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_events::config::NatsConfig;
use loyalty_events::envelope::Origin;
use loyalty_events::nats::NatsBus;
use loyalty_events::{Envelope, EventBus};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::process::Child;

struct Files {
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`.
fn certificates(dir: &Path) -> Files {
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()]);
    let (client_cert, client_key) = leaf(vec!["memberd".into()]);
    write("server.pem", server_cert);
    write("server-key.pem", server_key);
    Files {
        ca: write("ca.pem", ca.pem()),
        client_cert: write("client.pem", client_cert),
        client_key: write("client-key.pem", client_key),
    }
}

/// `nats-server` with JetStream, mutual TLS and a user, on a free loopback port.
async fn secured_server(dir: &Path) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = dir.display();
    let config = format!(
        r#"
listen: "127.0.0.1:{port}"
jetstream {{ store_dir: "{d}/js" }}
tls {{
  cert_file: "{d}/server.pem"
  key_file: "{d}/server-key.pem"
  ca_file: "{d}/ca.pem"
  verify: true
  timeout: 2
}}
authorization {{ user: "memberd", password: "right-password" }}
"#
    );
    let path = dir.join("nats.conf");
    std::fs::write(&path, config).unwrap();
    let child = loyalty_events::testing::nats_server_with_config(&path, port).await;
    (child, port)
}

fn config(port: u16, files: &Files, password: &str, client_cert: bool) -> NatsConfig {
    NatsConfig {
        url: format!("tls://127.0.0.1:{port}"),
        user: Some("memberd".into()),
        password: Some(password.into()),
        tls_ca_file: Some(files.ca.clone()),
        tls_client_cert: client_cert.then(|| files.client_cert.clone()),
        tls_client_key: client_cert.then(|| files.client_key.clone()),
        ack_timeout_ms: 1_000,
        max_reconnect_delay_ms: 200,
        ..NatsConfig::default()
    }
}

/// Whether the bus connects within `wait`.
async fn connects(bus: &NatsBus, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if bus.is_connected() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn event() -> Envelope {
    let origin = Origin {
        service: "ledger",
        tenant: "acme",
        member: "m1",
    };
    let data = serde_json::value::to_raw_value(&serde_json::json!({})).unwrap();
    Envelope::new(
        origin,
        "earned",
        "TLS-1".into(),
        1,
        chrono::Utc::now(),
        data,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_and_a_password_from_config_connect_and_publish() {
    let dir = tempfile::tempdir().unwrap();
    let files = certificates(dir.path());
    let (_server, port) = secured_server(dir.path()).await;

    let bus = NatsBus::connect(&config(port, &files, "right-password", true))
        .await
        .unwrap();
    assert!(connects(&bus, Duration::from_secs(10)).await);
    bus.prepare("ledger").await.unwrap();
    bus.publish(vec![event()]).await.unwrap();
    let last = bus.last_published("ledger").await.unwrap().unwrap();
    assert_eq!((last.sequence, last.id.as_str()), (1, "TLS-1"));

    for (what, password, client_cert) in [
        ("without a client certificate", "right-password", false),
        ("with a wrong password", "wrong-password", true),
    ] {
        let bus = NatsBus::connect(&config(port, &files, password, client_cert))
            .await
            .unwrap();
        assert!(
            !connects(&bus, Duration::from_secs(2)).await,
            "connected {what}"
        );
        assert!(bus.prepare("ledger").await.is_err(), "prepared {what}");
    }
}

#[tokio::test]
async fn an_unreadable_credentials_file_is_a_clear_configuration_error() {
    let config = NatsConfig {
        credentials_file: Some("/nonexistent/memberd.creds".into()),
        ..NatsConfig::default()
    };
    let err = NatsBus::connect(&config).await.err().unwrap().to_string();
    assert!(
        err.contains("cannot read the NATS credentials file /nonexistent/memberd.creds"),
        "{err}"
    );
}
