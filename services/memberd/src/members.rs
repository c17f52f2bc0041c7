//! The member service of this process: its store in `<data_dir>/member/store`, and the
//! master key that protects members' personal data (decision 0008).

use crate::config::{MemberSettings, MemberdConfig};
use crate::roles::platform::PlatformWork;
use crate::schedule::{SchedulerLease, run_every};
use crate::storage::{ScyllaStorage, Storage};
use anyhow::Context;
use base64::Engine;
use loyalty_common::SystemClock;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use loyalty_member::orders::LedgerPort;
use loyalty_member::service::Members;
use loyalty_member::store::cql::ScyllaMemberStore;
use loyalty_member::store::{EmbeddedMemberStore, MemberRepository};
use loyalty_member::vault::MasterKey;
use loyalty_region::background::{Handling, SharedView};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The member service on the embedded store; orders earn in `ledger` when there is one
/// (import and export run without).
pub fn start(
    config: &MemberdConfig,
    ledger: Option<Arc<dyn LedgerPort>>,
) -> anyhow::Result<Arc<Members>> {
    start_on(config, ledger, None)
}

/// The member service for the admin commands (import, export), without a ledger: on
/// ScyllaDB when `storage = "scylla"`, else on the embedded store.
pub async fn open(config: &MemberdConfig) -> anyhow::Result<Arc<Members>> {
    let store = match config.storage {
        Storage::Scylla => {
            Some(scylla_store(&ScyllaStorage::open(config, &["member"]).await?).await?)
        }
        Storage::Embedded => None,
    };
    start_on(config, None, store)
}

/// The member store on the cluster's member keyspace.
pub async fn scylla_store(scylla: &ScyllaStorage) -> anyhow::Result<Arc<dyn MemberRepository>> {
    let store = ScyllaMemberStore::prepare(Arc::clone(&scylla.cluster), &scylla.keyspace("member"))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .context("preparing the member store on ScyllaDB")?;
    Ok(Arc::new(store))
}

/// The member service on `store` (ScyllaDB), or on the embedded store when `None`.
pub fn start_on(
    config: &MemberdConfig,
    ledger: Option<Arc<dyn LedgerPort>>,
    store: Option<Arc<dyn MemberRepository>>,
) -> anyhow::Result<Arc<Members>> {
    let dir = config.data_dir.join("member");
    let (store, master): (Arc<dyn MemberRepository>, _) = match store {
        Some(store) => {
            // Every replica reads every member: they must share the key, so none is made up.
            if config.member.master_key.is_none() {
                anyhow::bail!(
                    "with storage = \"scylla\", set member.master_key (MEMBERD_MEMBER__MASTER_KEY, \
                     32 bytes in base64) to the same key on every replica"
                );
            }
            (store, master_key(config, &dir)?)
        }
        None => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating the member directory {}", dir.display()))?;
            let master = master_key(config, &dir)?;
            let cache_bytes = config.member.cache_mib.saturating_mul(1024 * 1024);
            let store = EmbeddedMemberStore::open_with_cache(&dir.join("store"), cache_bytes)
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            (Arc::new(store), master)
        }
    };
    let mut members = Members::new(store, master, Arc::new(SystemClock::default()))
        .with_erasure_deadline_days(config.member.erasure_deadline_days);
    if let Some(ledger) = ledger {
        members = members.with_ledger(ledger);
    }
    Ok(Arc::new(members))
}

/// The member service's scheduled work until shutdown, while this process holds `lease`:
/// segments whose refresh is due, and every `review_interval_secs` a review of every member's
/// tier and a scoring run, for every tenant, and a purge of erased members' old rows. A
/// tenant's failure is logged and does not hold up the others; a review that failed anywhere
/// runs again at the next turn. In two regions (`regions`, decision 0019), a tenant's work is
/// done only in its home, only while that region holds its lease, and nowhere while the
/// tenant moves: it writes members as client requests do.
pub async fn schedule(
    members: Arc<Members>,
    settings: MemberSettings,
    platform: PlatformWork,
    lease: Arc<SchedulerLease>,
    shutdown: watch::Receiver<bool>,
    regions: Option<SharedView>,
) {
    let tick = Duration::from_secs(settings.segments_check_secs.max(1));
    let review = Duration::from_secs(settings.review_interval_secs);
    // When this process last finished a whole review; a replica that takes the lease over
    // reviews at its first turn.
    let last_review: Arc<Mutex<Option<Instant>>> = Arc::default();
    let turn = || {
        let (members, platform, last_review, regions) = (
            Arc::clone(&members),
            platform.clone(),
            Arc::clone(&last_review),
            regions.clone(),
        );
        async move {
            let last = *last_review.lock().unwrap_or_else(|e| e.into_inner());
            let review_due = !review.is_zero() && last.is_none_or(|at| at.elapsed() >= review);
            let started = Instant::now();
            let ok = platform
                .run(
                    "member-schedule",
                    scheduled_turn(&members, review_due, regions.as_ref()),
                )
                .await;
            if ok && review_due {
                *last_review.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
            }
            ok
        }
    };
    run_every("member-schedule", lease, tick, shutdown, turn).await;
}

/// One turn of scheduled work; whether all of it succeeded.
async fn scheduled_turn(members: &Members, review: bool, regions: Option<&SharedView>) -> bool {
    // A region without its lease passes nothing by either: it does nothing.
    if regions.is_some_and(|view| !view.read(|v, now| v.may_run(now))) {
        return true;
    }
    let tenants = match members.repository().tenants().await {
        Ok(tenants) => tenants,
        Err(e) => {
            tracing::warn!(error = %e.message, "scheduled member work cannot list tenants; retrying next turn");
            return false;
        }
    };
    let mut ok = true;
    for tenant in tenants {
        // The other region's tenants are their home's; one on the move waits for its turn.
        let handling = regions.map(|view| view.read(|v, now| v.handling(&tenant, now)));
        if handling.is_some_and(|h| h != Handling::Here) {
            continue;
        }
        if let Err(e) = tenant_turn(members, &tenant, review).await {
            ok = false;
            tracing::warn!(%tenant, error = %e.message, "scheduled member work failed; retrying next turn");
        }
    }
    if review {
        match members.purge_erased().await {
            Ok(true) => tracing::info!("purged erased members' old rows from storage"),
            Ok(false) => {}
            Err(e) => {
                ok = false;
                tracing::warn!(error = %e.message, "purging erased members failed; retrying next turn");
            }
        }
    }
    ok
}

async fn tenant_turn(members: &Members, tenant: &str, review: bool) -> ServiceResult<()> {
    let tenant = TenantId::parse(tenant)?;
    // Each step on its own: a segment that fails does not stop the review.
    let segments = members.refresh_due_segments(&tenant).await;
    if review {
        let tiers = members.review_tiers(&tenant).await?;
        let scores = members.score_members(&tenant).await?;
        tracing::info!(%tenant, tiers_changed = tiers.changed, scores_changed = scores.changed,
            "member review done");
    }
    segments.map(|_| ())
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
