//! `[events]` in memberd's configuration.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which bus carries events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// In-process, no server: the embedded default.
    Embedded,
    /// NATS JetStream at `events.nats.url`.
    Nats,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EventsConfig {
    /// Unset: the embedded bus when every service runs in one process, NATS when a process
    /// runs one service (its events must reach the others).
    pub bus: Option<BusKind>,
    /// Most changes published per round; a round waits for every confirmation.
    pub batch_size: usize,
    /// Pause after a round that drained the change log (bounds how often it publishes).
    pub poll_interval_ms: u64,
    pub nats: NatsConfig,
    /// The in-process bus of the embedded default.
    pub embedded: EmbeddedBusConfig,
    /// For crash tests only: abort the process right after the bus confirms a round, before
    /// the publisher saves its position.
    #[doc(hidden)]
    pub crash_after_publish: bool,
    /// For benchmarks only: run without the publisher (changes wait in the log), to measure
    /// what publication costs.
    #[doc(hidden)]
    pub disable_publisher: bool,
}

impl EventsConfig {
    /// The bus to use: the configured one, or the default for how the services are deployed.
    pub fn bus_kind(&self, all_in_one_process: bool) -> BusKind {
        self.bus.unwrap_or(if all_in_one_process {
            BusKind::Embedded
        } else {
            BusKind::Nats
        })
    }
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            bus: None,
            batch_size: 512,
            poll_interval_ms: 50,
            nats: NatsConfig::default(),
            embedded: EmbeddedBusConfig::default(),
            crash_after_publish: false,
            disable_publisher: false,
        }
    }
}

/// The embedded bus's stream, kept in `<data_dir>/events` like a JetStream stream with
/// `limits` retention.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EmbeddedBusConfig {
    /// How long events are kept, in seconds (dropped a table at a time, so some stay a little
    /// longer); 0 for no age limit.
    pub max_age_secs: u64,
    /// Largest size of the stream on disk in bytes; -1 for no limit.
    pub max_bytes: i64,
    /// A re-published copy of any of the newest this many events is dropped (JetStream's
    /// duplicate window, counted in events).
    pub duplicate_window_events: usize,
}

impl Default for EmbeddedBusConfig {
    fn default() -> Self {
        Self {
            max_age_secs: 7 * 24 * 3600,
            max_bytes: -1,
            duplicate_window_events: 100_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsConfig {
    /// Server URL(s), comma separated: `nats://host:4222` or `tls://host:4222`.
    pub url: String,
    /// A NATS credentials file (JWT and NKey seed), as `nsc` writes it.
    pub credentials_file: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// A PEM file of CA certificates to trust; setting it requires TLS.
    pub tls_ca_file: Option<PathBuf>,
    /// A client certificate and its key (PEM) for mutual TLS.
    pub tls_client_cert: Option<PathBuf>,
    pub tls_client_key: Option<PathBuf>,
    /// How long a publication waits for JetStream's confirmation before it is retried.
    pub ack_timeout_ms: u64,
    /// Longest pause between reconnection attempts (the client backs off up to it).
    pub max_reconnect_delay_ms: u64,
    pub stream: StreamSettings,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            credentials_file: None,
            user: None,
            password: None,
            tls_ca_file: None,
            tls_client_cert: None,
            tls_client_key: None,
            ack_timeout_ms: 5_000,
            max_reconnect_delay_ms: 5_000,
            stream: StreamSettings::default(),
        }
    }
}

/// How each service's stream is created or updated at start-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamSettings {
    /// Streams are named `<prefix>_<SERVICE>`, e.g. `LOYALTY_LEDGER`.
    pub name_prefix: String,
    /// `limits` (keep until max_age / max_bytes), `interest` or `workqueue`.
    pub retention: Retention,
    /// How long events are kept, in seconds; also how far back a replay can go.
    pub max_age_secs: u64,
    /// Largest size of a stream in bytes; -1 for no limit.
    pub max_bytes: i64,
    /// Copies kept by the JetStream cluster (1, 3 or 5).
    pub replicas: usize,
    /// Window in which JetStream drops a second message with the same id.
    pub duplicate_window_secs: u64,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            name_prefix: "LOYALTY".into(),
            retention: Retention::Limits,
            max_age_secs: 7 * 24 * 3600,
            max_bytes: -1,
            replicas: 1,
            duplicate_window_secs: 120,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    Limits,
    Interest,
    Workqueue,
}

impl StreamSettings {
    /// `LOYALTY_LEDGER` for service `ledger`.
    pub fn stream_name(&self, service: &str) -> String {
        format!("{}_{}", self.name_prefix, service.to_ascii_uppercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bus_follows_the_deployment_unless_configured() {
        let unset = EventsConfig::default();
        assert_eq!(unset.bus_kind(true), BusKind::Embedded);
        assert_eq!(unset.bus_kind(false), BusKind::Nats);
        let chosen = EventsConfig {
            bus: Some(BusKind::Embedded),
            ..EventsConfig::default()
        };
        assert_eq!(chosen.bus_kind(false), BusKind::Embedded);
        let from_toml: EventsConfig = serde_json::from_str(r#"{"bus": "nats"}"#).unwrap();
        assert_eq!(from_toml.bus_kind(true), BusKind::Nats);
    }
}
