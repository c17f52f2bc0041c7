//! `memberd export`: a tenant's members to CSV, a page at a time (bounded memory), personal
//! data masked unless `--unmasked` is given; an unmasked export is recorded in the tenant's
//! audit chain (actor `system`, action `member.export_unmasked`) before the file is written.
//! Erased members are listed with their id and no personal data.

use crate::config::MemberdConfig;
use anyhow::Context;
use loyalty_common::Timestamp;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_identity::audit::{AuditEvent, Outcome};
use loyalty_identity::audit_log::AuditLog;
use loyalty_member::profile::Personal;
use loyalty_member::service::{Members, View};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The import's fields (so an export maps back onto an import one to one), then what only
/// the platform sets.
fn header() -> Vec<&'static str> {
    let mut header = crate::import::mapping::FIELDS.to_vec();
    header.extend(["tier", "created_at", "erased"]);
    header
}

/// Writes every member of `tenant` to `out`; how many.
pub async fn run(
    config: &MemberdConfig,
    members: &Members,
    tenant: &TenantId,
    out: &Path,
    unmasked: bool,
    progress: impl Fn(u64),
) -> anyhow::Result<u64> {
    if unmasked {
        record_unmasked_export(config, tenant, out).await?;
    }
    // Owner-only, like the master key: an unmasked export is personal data in the clear.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?;
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let header = header();
    writer.write_record(&header)?;
    let view = if unmasked {
        View::Unmasked
    } else {
        View::Masked
    };
    let mut after: Option<String> = None;
    let mut written = 0u64;
    loop {
        let page = members
            .repository()
            .profiles_page(tenant, after.as_deref(), 1_000)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.member_id.clone());
        for stored in page {
            let member = MemberId::parse(&stored.member_id)?;
            // Erased and merged members by id only: nothing personal to show, or shown with
            // the member they were merged into.
            let row = if stored.erased_at.is_some() || stored.merged_into.is_some() {
                erased_row(&stored.member_id, header.len())
            } else {
                let p = members.profile(tenant, &member, view).await?;
                let mut row = vec![p.member_id.clone()];
                row.extend(Personal::FIELDS.iter().map(|f| {
                    p.personal
                        .get(f)
                        .map(|v| v.expose().to_string())
                        .unwrap_or_default()
                }));
                row.extend([
                    p.channel.unwrap_or_default(),
                    p.store.unwrap_or_default(),
                    p.consents.sms.to_string(),
                    p.consents.email.to_string(),
                    p.consents.app.to_string(),
                    p.tags.into_iter().collect::<Vec<_>>().join("|"),
                    p.tier.unwrap_or_default(),
                    p.created_at.to_rfc3339(),
                    "false".into(),
                ]);
                row
            };
            writer.write_record(&row)?;
            written += 1;
        }
        progress(written);
    }
    writer.flush()?;
    writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .flush()?;
    Ok(written)
}

fn erased_row(member: &str, columns: usize) -> Vec<String> {
    let mut row = vec![member.to_string()];
    row.extend(std::iter::repeat_n(String::new(), columns - 2));
    row.push("true".into());
    row
}

/// Appends the export to the tenant's audit chain, durably, before any data is written.
async fn record_unmasked_export(
    config: &MemberdConfig,
    tenant: &TenantId,
    out: &Path,
) -> anyhow::Result<()> {
    let log = AuditLog::start(crate::identity::audit_store(config).await?);
    let event = AuditEvent {
        actor: "system".into(),
        action: "member.export_unmasked".into(),
        target: format!("file:{}", out.display()),
        outcome: Outcome::Allowed,
        request_id: String::new(),
        at: Timestamp::from_datetime(chrono::Utc::now()),
    };
    log.record(tenant.as_str(), event)
        .await
        .map_err(|e| anyhow::anyhow!("recording the export in the audit log: {}", e.message))?;
    log.sync()
        .await
        .map_err(|e| anyhow::anyhow!("syncing the audit log: {}", e.message))?;
    log.close().await;
    Ok(())
}
