//! `memberd audit verify`: checks every tenant's audit chain in the identity store.

use crate::config::MemberdConfig;
use anyhow::Context;
use loyalty_identity::audit_log::AuditLog;
use loyalty_identity::store::embedded::EmbeddedIdentityStore;
use std::sync::Arc;

/// Prints one line per tenant; returns whether every chain is intact.
pub async fn verify(config: &MemberdConfig) -> anyhow::Result<bool> {
    let dir = config.data_dir.join("identity");
    if !dir.exists() {
        anyhow::bail!(
            "no identity store in {}: pass the data directory memberd runs on (--data-dir)",
            dir.display()
        );
    }
    let store = EmbeddedIdentityStore::open(&dir)
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .with_context(|| format!("opening {} (stop memberd first)", dir.display()))?;
    let log = AuditLog::start(Arc::new(store));
    let verdicts = log
        .verify_all()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let mut intact = true;
    for (tenant, verdict) in &verdicts {
        match verdict {
            Ok(count) => println!("{tenant}: {count} records, chain intact"),
            Err(broken) => {
                intact = false;
                println!(
                    "{tenant}: BROKEN at record {}: {}",
                    broken.seq, broken.reason
                );
            }
        }
    }
    if verdicts.is_empty() {
        println!("no audit records yet");
    }
    Ok(intact)
}
