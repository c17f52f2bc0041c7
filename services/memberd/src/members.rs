//! The member service of this process: its store in `<data_dir>/member/store`, and the
//! master key that protects members' personal data (decision 0008).

use crate::config::MemberdConfig;
use anyhow::Context;
use base64::Engine;
use loyalty_common::SystemClock;
use loyalty_member::service::Members;
use loyalty_member::store::EmbeddedMemberStore;
use loyalty_member::vault::MasterKey;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

pub fn start(config: &MemberdConfig) -> anyhow::Result<Arc<Members>> {
    let dir = config.data_dir.join("member");
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the member directory {}", dir.display()))?;
    let master = master_key(config, &dir)?;
    let store = EmbeddedMemberStore::open(&dir.join("store"))
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok(Arc::new(Members::new(
        Arc::new(store),
        master,
        Arc::new(SystemClock::default()),
    )))
}

/// The configured master key, else the one in `master.key`, else a new one written there.
fn master_key(config: &MemberdConfig, dir: &Path) -> anyhow::Result<MasterKey> {
    if let Some(given) = &config.member.master_key {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(given.expose().trim())
            .context("member.master_key is not base64")?;
        return MasterKey::from_bytes(&bytes)
            .map_err(|e| anyhow::anyhow!("member.master_key: {e} (give 32 bytes, base64)"));
    }
    let path = dir.join("master.key");
    if path.exists() {
        let bytes = std::fs::read(&path)
            .with_context(|| format!("reading the member master key {}", path.display()))?;
        return MasterKey::from_bytes(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}; restore it from its backup", path.display()));
    }
    let (key, raw) = MasterKey::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing the member master key {}", path.display()))?;
    file.write_all(&raw)?;
    file.sync_all()?;
    eprintln!(
        "memberd: generated the master key for members' personal data in {}; back it up apart \
         from the data directory: without it no personal data can be read",
        path.display()
    );
    Ok(key)
}
