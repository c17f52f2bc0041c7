//! `memberd audit verify`: checks every tenant's audit chain in the identity store (embedded
//! or on ScyllaDB, as `storage` says).

use crate::config::MemberdConfig;
use loyalty_identity::audit_log::AuditLog;

/// Prints one line per tenant; returns whether every chain is intact.
pub async fn verify(config: &MemberdConfig) -> anyhow::Result<bool> {
    let dir = config.data_dir.join("identity");
    if config.storage == crate::storage::Storage::Embedded && !dir.exists() {
        anyhow::bail!(
            "no identity store in {}: pass the data directory memberd runs on (--data-dir)",
            dir.display()
        );
    }
    let log = AuditLog::start(crate::identity::audit_store(config).await?);
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
