//! Where the services of this process keep their data: the embedded store under `data_dir`
//! (the default, for one machine) or ScyllaDB (`storage = "scylla"` and `[scylla]`, as the
//! Helm chart runs it). On ScyllaDB, every keyspace this process uses must hold the
//! migrations the binary carries: an older schema is refused before anything starts.

use crate::config::MemberdConfig;
use crate::migrate::SERVICES;
use loyalty_scylla::session::Cluster;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// Files under `data_dir` (fjall): one machine, nothing else to run.
    #[default]
    Embedded,
    /// The cluster `[scylla]` names, its keyspaces migrated by `memberd migrate`.
    Scylla,
}

/// A session to the cluster, opened once for every service of the process.
pub struct ScyllaStorage {
    pub cluster: Arc<Cluster>,
    pub config: loyalty_scylla::ScyllaConfig,
}

impl ScyllaStorage {
    /// Connects, then checks the schema of each of `services` (`ledger`, `member`,
    /// `identity`): a keyspace older than this binary is refused with the command to run.
    pub async fn open(config: &MemberdConfig, services: &[&str]) -> anyhow::Result<Self> {
        let cluster = loyalty_scylla::session::connect(&config.scylla).await?;
        for service in services {
            let migrations = SERVICES
                .iter()
                .find(|(name, _)| name == service)
                .map(|(_, migrations)| *migrations)
                .ok_or_else(|| anyhow::anyhow!("no keyspace for the service {service}"))?;
            loyalty_scylla::migrate::require_current(&cluster, &config.scylla, service, migrations)
                .await?;
        }
        Ok(Self {
            cluster: Arc::new(cluster),
            config: config.scylla.clone(),
        })
    }

    /// The keyspace of `service`.
    pub fn keyspace(&self, service: &str) -> String {
        self.config.keyspace(service)
    }
}
