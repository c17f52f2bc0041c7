//! The identity service of this process: its store in `<data_dir>/identity` or on ScyllaDB,
//! and the platform administrator created on the first start.

use crate::config::MemberdConfig;
use crate::storage::ScyllaStorage;
use anyhow::Context;
use loyalty_common::SystemClock;
use loyalty_identity::password::Passwords;
use loyalty_identity::service::IdentityService;
use loyalty_identity::store::cql::ScyllaIdentityStore;
use loyalty_identity::store::embedded::EmbeddedIdentityStore;
use std::sync::Arc;

/// Opens the identity store, starts the service, and on the first start creates the platform
/// administrator (printing a generated password once).
pub async fn start(
    config: &MemberdConfig,
    scylla: Option<&ScyllaStorage>,
) -> anyhow::Result<Arc<IdentityService>> {
    let ports = match scylla {
        Some(scylla) => ScyllaIdentityStore::prepare(
            Arc::clone(&scylla.cluster),
            &scylla.keyspace("identity"),
            Arc::new(SystemClock::default()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .context("preparing the identity store on ScyllaDB")?
        .ports(),
        None => {
            let dir = config.data_dir.join("identity");
            EmbeddedIdentityStore::open(&dir)
                .map_err(|e| anyhow::anyhow!("{}", e.message))
                .with_context(|| format!("opening the identity store in {}", dir.display()))?
                .ports()
        }
    };
    let settings = &config.identity;
    let service = IdentityService::start(
        ports,
        Arc::new(SystemClock::default()),
        settings.clone(),
        Passwords::default(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.message))
    .context("starting the identity service")?;
    let given = settings.bootstrap_password.as_ref().map(|s| s.expose());
    let created = service
        .ensure_platform_admin(&settings.bootstrap_admin, given)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .context("creating the first platform administrator")?;
    match created {
        Some(generated) if !generated.is_empty() => eprintln!(
            "memberd: created the platform administrator `{}` with the password {generated}\n\
             memberd: it is shown this once; log in at POST /v1/auth/login (tenant \"*\") and \
             change it at POST /v1/auth/password",
            settings.bootstrap_admin
        ),
        Some(_) => eprintln!(
            "memberd: created the platform administrator `{}` with the configured password",
            settings.bootstrap_admin
        ),
        None => {}
    }
    Ok(service)
}

/// The audit log's store for the admin commands (`memberd audit verify`, an unmasked
/// export): on ScyllaDB when `storage = "scylla"`, else the embedded store under `data_dir`,
/// which memberd must not hold open meanwhile.
pub async fn audit_store(
    config: &MemberdConfig,
) -> anyhow::Result<Arc<dyn loyalty_identity::store::AuditRepository>> {
    if config.storage == crate::storage::Storage::Scylla {
        let scylla = ScyllaStorage::open(config, &["identity"]).await?;
        let store = ScyllaIdentityStore::prepare(
            Arc::clone(&scylla.cluster),
            &scylla.keyspace("identity"),
            Arc::new(SystemClock::default()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .context("preparing the identity store on ScyllaDB")?;
        return Ok(Arc::new(store));
    }
    let dir = config.data_dir.join("identity");
    let store = EmbeddedIdentityStore::open(&dir)
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .with_context(|| format!("opening {} (stop memberd first)", dir.display()))?;
    Ok(Arc::new(store))
}
