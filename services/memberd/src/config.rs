//! `memberd`'s configuration: defaults, then `--config FILE` (TOML), then `MEMBERD_*` variables,
//! then command-line flags.

use loyalty_events::EventsConfig;
use loyalty_gateway::GatewayConfig;
use loyalty_identity::service::IdentityConfig;
use loyalty_ledger::store::embedded::StoreOptions;
use loyalty_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which services this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Every service in one process (single machine).
    All,
    /// Only the ledger's gRPC service (plus health and metrics over HTTP).
    Ledger,
    /// Only the REST gateway, calling the identity service at `identity_endpoint`, the
    /// ledger at `ledger_endpoint` and the member service at `member_endpoint`.
    Gateway,
    /// Only the member service's gRPC API (`member.v1`), earning in the ledger at
    /// `ledger_endpoint` and checking its callers with the identity service at
    /// `identity_endpoint`.
    Member,
    /// Only the identity service's gRPC API (`identity.v1`), which a `--target ledger`
    /// elsewhere asks about its callers (`identity_endpoint`).
    Identity,
    /// Only the campaign service's gRPC API (`campaign.v1`), reading members at
    /// `member_endpoint`, paying bonus points into the ledger at `ledger_endpoint` and
    /// checking its callers with the identity service at `identity_endpoint`.
    Campaign,
}

impl Target {
    /// The target's name, as `--target` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Ledger => "ledger",
            Self::Gateway => "gateway",
            Self::Member => "member",
            Self::Identity => "identity",
            Self::Campaign => "campaign",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberdConfig {
    pub target: Target,
    /// Where the embedded store keeps its files.
    pub data_dir: PathBuf,
    /// REST API, health, readiness and metrics (`MEMBERD_HTTP_ADDR`).
    pub http_addr: String,
    /// gRPC services (`MEMBERD_GRPC_ADDR`).
    pub grpc_addr: String,
    /// The ledger's gRPC endpoint when running `--target gateway`.
    pub ledger_endpoint: String,
    /// The member service's gRPC endpoint when running `--target gateway` or `campaign`.
    pub member_endpoint: String,
    /// The campaign service's gRPC endpoint when running `--target gateway`.
    pub campaign_endpoint: String,
    /// The identity service's gRPC endpoint (`--target identity`): what a `--target ledger`
    /// or `member` asks about every caller (unset, a ledger checks no caller), and what a
    /// `--target gateway` authenticates, authorizes and administers through (required).
    pub identity_endpoint: Option<String>,
    /// How long a call to a service in another process may take, in milliseconds.
    pub call_deadline_ms: u64,
    /// How often the scheduler looks for due work (activations, expiries, stuck transfers).
    pub scheduler_interval_ms: u64,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace_secs: u64,
    /// Caches of the embedded store.
    pub store: StoreOptions,
    /// Where events go: the in-process bus (default) or NATS JetStream.
    pub events: EventsConfig,
    pub telemetry: TelemetryConfig,
    pub gateway: GatewayConfig,
    /// Tokens and the first platform administrator.
    pub identity: IdentityConfig,
    /// `[member]`: the member service.
    pub member: MemberSettings,
    /// `[campaign]`: the campaign service.
    pub campaign: CampaignSettings,
    /// Where the services keep their data: `embedded` (files under `data_dir`, the default)
    /// or `scylla` (the cluster `[scylla]` names).
    pub storage: crate::storage::Storage,
    /// `[scylla]`: the cluster `memberd migrate` applies the schema to, and the services use
    /// with `storage = "scylla"` (decision 0012).
    pub scylla: loyalty_scylla::ScyllaConfig,
    /// `[region]`: two regions (decision 0019); unset `region.name`, one region.
    pub region: RegionSettings,
}

/// `[region]`: this process's region, the other region's gateway, and automatic failover.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RegionSettings {
    /// This region's name (as the homes name it). Set, the gateway routes writes by the
    /// tenants' homes and renews this region's lease in the control keyspace.
    pub name: Option<String>,
    /// The other region's name.
    pub peer: Option<String>,
    /// The other region's gateway, `http://host:port`: where writes for its tenants are
    /// forwarded, and whose `/readyz` says whether it is healthy.
    pub peer_url: Option<String>,
    /// Take the other region's tenants over once its gateway has failed its health checks
    /// this long and its lease has lapsed; unset, failover is `memberd region failover`.
    pub failover_after_ms: Option<u64>,
    /// How long a write may run in this region (default 1,000 ms): a write is accepted only
    /// if it can end inside the lease (4 s after a renewal sent), and is cut off after this
    /// long. The rest of the 4 s absorbs a slow renewal.
    pub write_time_ms: Option<u64>,
}

impl Default for MemberdConfig {
    fn default() -> Self {
        Self {
            target: Target::All,
            data_dir: PathBuf::from("./data"),
            http_addr: "127.0.0.1:8080".into(),
            grpc_addr: "127.0.0.1:50051".into(),
            ledger_endpoint: "http://127.0.0.1:50051".into(),
            member_endpoint: "http://127.0.0.1:50051".into(),
            campaign_endpoint: "http://127.0.0.1:50051".into(),
            identity_endpoint: None,
            call_deadline_ms: 10_000,
            scheduler_interval_ms: 1000,
            shutdown_grace_secs: 30,
            store: StoreOptions::default(),
            events: EventsConfig::default(),
            telemetry: TelemetryConfig::default(),
            gateway: GatewayConfig::default(),
            identity: IdentityConfig::default(),
            member: MemberSettings::default(),
            campaign: CampaignSettings::default(),
            storage: crate::storage::Storage::default(),
            scylla: loyalty_scylla::ScyllaConfig::default(),
            region: RegionSettings::default(),
        }
    }
}

/// `[campaign]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CampaignSettings {
    /// How often lapsed checkout holds are given back and lapsing coupons announced.
    pub sweep_interval_secs: u64,
    /// How many days before a member's coupon lapses its `coupon_expiring_soon` event goes.
    pub expiring_notice_days: u32,
    /// How often coupons' bonus points are paid through the ledger (milliseconds).
    pub payout_interval_ms: u64,
    /// How old a points-mall order or lucky-draw entry cut short (its process or the ledger
    /// gone between its steps) must be before the sweep undoes it.
    pub saga_grace_secs: u64,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        Self {
            sweep_interval_secs: 30,
            expiring_notice_days: 3,
            payout_interval_ms: 1_000,
            saga_grace_secs: 300,
        }
    }
}

/// `[member]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberSettings {
    /// The master key that wraps every tenant's keys for personal data: 32 bytes, base64.
    /// Unset, one is generated on the first start into `<data_dir>/member/master.key`
    /// (readable by its owner only), which must then be backed up apart from the data.
    pub master_key: Option<loyalty_common::config::Secret>,
    /// Days within which an erasure request must be complete (shown in its status).
    pub erasure_deadline_days: u32,
    /// How often scheduled segments are checked for a due refresh.
    pub segments_check_secs: u64,
    /// How often every member's tier is reviewed and scores computed (0: never on schedule).
    pub review_interval_secs: u64,
    /// The member store's block cache, MiB: the data blocks of recently read profiles and
    /// facts (about 540 MiB on disk per million members), served without a read from the
    /// operating system's page cache.
    pub cache_mib: u64,
}

impl Default for MemberSettings {
    fn default() -> Self {
        Self {
            master_key: None,
            erasure_deadline_days: 30,
            segments_check_secs: 60,
            review_interval_secs: 86_400,
            cache_mib: 128,
        }
    }
}
