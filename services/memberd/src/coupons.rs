//! `memberd coupons generate` and `memberd coupons import`: batches of bearer codes made
//! into a CSV file for a printer (up to 1,000,000, with progress), and codes printed
//! elsewhere read from one. Both open the campaign store directly (run while memberd is
//! stopped) and are idempotent by their batch id: run again, a batch finds what it made.

use crate::config::MemberdConfig;
use anyhow::Context;
use loyalty_campaign::code;
use loyalty_campaign::service::issue::Issued;
use loyalty_common::ids::TenantId;
use std::path::Path;

/// What to generate.
pub struct Generate<'a> {
    pub tenant: &'a str,
    pub template: &'a str,
    pub batch: &'a str,
    pub prefix: &'a str,
    pub count: usize,
    pub out: &'a Path,
}

fn tenant(tenant: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(tenant).map_err(|e| anyhow::anyhow!("--tenant: {}", e.message))
}

/// Generates the batch into `out` (code, printed form, template, batch, validity), calling
/// `progress` with the codes written so far.
pub async fn generate(
    config: &MemberdConfig,
    args: &Generate<'_>,
    progress: impl Fn(u64) + Send + Sync,
) -> anyhow::Result<Issued> {
    let tenant = tenant(args.tenant)?;
    let campaigns = crate::roles::campaign::open(config, None).await?;
    let mut out = csv::Writer::from_path(args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    out.write_record([
        "code",
        "printed",
        "template",
        "batch",
        "valid_from_ms",
        "valid_until_ms",
    ])?;
    let mut written = 0u64;
    let mut failed: Option<csv::Error> = None;
    let issued = campaigns
        .generate(
            &tenant,
            args.template,
            args.batch,
            args.prefix,
            args.count,
            |done| {
                for c in done {
                    let row = [
                        c.code.clone(),
                        code::display(&c.code),
                        c.template.clone(),
                        c.batch.clone().unwrap_or_default(),
                        c.valid_from_ms.to_string(),
                        c.valid_until_ms.to_string(),
                    ];
                    if let Err(e) = out.write_record(&row) {
                        failed.get_or_insert(e);
                    }
                }
                written += done.len() as u64;
                progress(written);
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if let Some(e) = failed {
        return Err(e).with_context(|| format!("writing {}", args.out.display()));
    }
    out.flush()
        .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(issued)
}

/// Imports the codes of the CSV file `file` (its `code` column, or its first) as bearer
/// coupons of `template` in `batch`.
pub async fn import(
    config: &MemberdConfig,
    tenant_id: &str,
    template: &str,
    batch: &str,
    file: &Path,
) -> anyhow::Result<Issued> {
    let tenant = tenant(tenant_id)?;
    let mut reader =
        csv::Reader::from_path(file).with_context(|| format!("cannot read {}", file.display()))?;
    let column = reader
        .headers()?
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("code"))
        .unwrap_or(0);
    let mut codes = Vec::new();
    for (n, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("{}: row {}", file.display(), n + 2))?;
        codes.push(row.get(column).unwrap_or_default().to_string());
    }
    let campaigns = crate::roles::campaign::open(config, None).await?;
    campaigns
        .import_codes(&tenant, template, batch, &codes)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
}
