//! Test harness: `spawn_app()` starts every service in this process on free ports with a fresh
//! data directory, logs in as the platform administrator, and gives back a REST client that
//! sends that access token.

use loyalty_common::config::Secret;
use loyalty_scylla::test_cluster::{self, SKIP_REASON, TestCluster};
use memberd::Running;
use memberd::config::MemberdConfig;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct TestApp {
    pub base: String,
    pub grpc: String,
    pub token: String,
    pub client: reqwest::Client,
    running: Option<Running>,
    _dir: tempfile::TempDir,
    keys: AtomicU64,
}

/// Starts memberd (`--target all`) on port 0.
pub async fn spawn_app() -> TestApp {
    spawn_app_in(tempfile::tempdir().expect("temp dir")).await
}

/// The platform administrator's password in tests.
pub const ADMIN_PASSWORD: &str = "kettle-orbit-plum-7";

/// Starts memberd on an existing data directory (to test restarts).
pub async fn spawn_app_in(dir: tempfile::TempDir) -> TestApp {
    spawn_app_with(dir, |_| {}).await
}

/// Starts memberd with settings changed by `configure`.
pub async fn spawn_app_with(
    dir: tempfile::TempDir,
    configure: impl FnOnce(&mut MemberdConfig),
) -> TestApp {
    let mut config = MemberdConfig {
        data_dir: dir.path().to_path_buf(),
        http_addr: "127.0.0.1:0".into(),
        grpc_addr: "127.0.0.1:0".into(),
        scheduler_interval_ms: 50,
        ..MemberdConfig::default()
    };
    config.identity.bootstrap_password = Some(Secret::new(ADMIN_PASSWORD));
    configure(&mut config);
    let running = memberd::start(config).await.expect("memberd starts");
    let mut app = TestApp {
        base: format!("http://{}", running.http_addr),
        grpc: format!("http://{}", running.grpc_addr.expect("grpc addr")),
        token: String::new(),
        client: reqwest::Client::new(),
        running: Some(running),
        _dir: dir,
        keys: AtomicU64::new(0),
    };
    app.token = app.login("*", "admin", ADMIN_PASSWORD).await;
    app
}

/// Starts memberd (`--target all`) with `storage = "scylla"` on the CQL cluster the
/// environment names (`loyalty_scylla::test_cluster`), in keyspaces of its own that it
/// migrates first; None, with the reason printed, when no cluster is named.
pub async fn spawn_app_on_cql(name: &str) -> Option<TestApp> {
    let Some(cluster) = TestCluster::from_env() else {
        eprintln!("{name}: its CQL half was skipped: {SKIP_REASON}");
        return None;
    };
    let scylla = cluster.config(&test_cluster::unique_prefix(name));
    memberd::migrate::run(&scylla)
        .await
        .expect("the test keyspaces are migrated");
    let dir = tempfile::tempdir().expect("temp dir");
    Some(
        spawn_app_with(dir, move |config| {
            config.storage = memberd::storage::Storage::Scylla;
            config.scylla = scylla;
            config.member.master_key = Some(Secret::new(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                [7u8; 32],
            )));
        })
        .await,
    )
}

/// A response: status, content type and JSON body (Null when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Reply {
    /// The stable error code of a problem+json reply.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    /// Logs in and returns the access token.
    pub async fn login(&self, tenant: &str, username: &str, password: &str) -> String {
        let body =
            serde_json::json!({"tenant": tenant, "username": username, "password": password});
        let reply = self
            .send(
                self.client
                    .post(format!("{}/v1/auth/login", self.base))
                    .json(&body),
            )
            .await;
        assert_eq!(reply.status, 200, "login: {reply:?}");
        reply.body["access_token"]
            .as_str()
            .expect("an access token")
            .to_string()
    }

    /// A fresh idempotency key.
    pub fn key(&self) -> String {
        format!("key-{}", self.keys.fetch_add(1, Ordering::SeqCst))
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request reaches memberd");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            body,
        }
    }

    /// Creates tenant `acme` and an API key of it with the role partner; the key.
    pub async fn acme_partner_key(&self) -> String {
        let tenant = self
            .post(
                "/v1/tenants",
                serde_json::json!({"id": "acme", "name": "Acme"}),
            )
            .await;
        assert_eq!(tenant.status, 200, "{:?}", tenant.body);
        let key = self
            .post(
                "/v1/tenants/acme/api-keys",
                serde_json::json!({"name": "crm", "roles": ["partner"]}),
            )
            .await;
        key.body["key"].as_str().unwrap_or_default().to_string()
    }

    /// GET `path` with the API key `key` instead of the administrator's token.
    pub async fn get_with_key(&self, path: &str, key: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("x-api-key", key)
            .send()
            .await
            .expect("memberd answers")
    }

    /// The identity service of this memberd.
    pub fn identity(&self) -> std::sync::Arc<loyalty_identity::service::IdentityService> {
        let running = self.running.as_ref().expect("running");
        std::sync::Arc::clone(running.identity().expect("memberd runs the gateway"))
    }

    /// The identity service of this memberd, as its client.
    pub fn identity_client(&self) -> std::sync::Arc<dyn loyalty_identity::client::IdentityClient> {
        std::sync::Arc::new(loyalty_identity::client::InProcessIdentity::new(
            self.identity(),
        ))
    }

    /// The member service of this memberd.
    pub fn members(&self) -> std::sync::Arc<loyalty_member::service::Members> {
        let running = self.running.as_ref().expect("running");
        std::sync::Arc::clone(running.members().expect("memberd runs the gateway"))
    }

    /// POST with the token, a fresh idempotency key and a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        let key = self.key();
        self.post_with_key(path, &key, body).await
    }

    pub async fn post_with_key(&self, path: &str, key: &str, body: Value) -> Reply {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .header("idempotency-key", key)
                .json(&body),
        )
        .await
    }

    /// POST as a caller with an API key (a till, a partner), with an idempotency key and a
    /// JSON body.
    pub async fn post_as(&self, api_key: &str, path: &str, key: &str, body: Value) -> Reply {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .header("x-api-key", api_key)
                .header("idempotency-key", key)
                .json(&body),
        )
        .await
    }

    /// Any method with the token, a fresh idempotency key and a JSON body.
    pub async fn request(&self, method: &str, path: &str, body: Value) -> Reply {
        let method: reqwest::Method = method.parse().expect("an HTTP method");
        self.send(
            self.client
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .header("idempotency-key", self.key())
                .json(&body),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(
            self.client
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.token),
        )
        .await
    }

    /// Registers `member` of acme with a phone (members' phones are unique).
    pub async fn join(&self, member: &str, phone: &str) {
        let path = format!("/v1/tenants/acme/members/{member}/profile");
        let joined = self
            .post(&path, serde_json::json!({"personal": {"phone": phone}}))
            .await;
        assert_eq!(joined.status, 200, "{joined:?}");
    }

    /// Opens a wallet and returns its path prefix.
    pub async fn wallet(&self, member: &str) -> String {
        let path = format!("/v1/tenants/acme/members/{member}");
        let reply = self.post(&format!("{path}/wallet"), Value::Null).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        path
    }

    /// Graceful shutdown.
    pub async fn stop(self) {
        self.stop_keeping_data().await;
    }

    /// Graceful shutdown that hands back the data directory for a restart.
    pub async fn stop_keeping_data(mut self) -> tempfile::TempDir {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("clean shutdown");
        }
        self._dir
    }
}
