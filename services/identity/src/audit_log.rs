//! Appending to the audit chains. A tenant's chain takes one record after another, so records
//! are queued and a single task appends whatever has gathered, per tenant, in one write (group
//! commit). `record` returns once its record is written: it survives the process being killed.
//! The store is synced to disk every [`SYNC_EVERY`] while records arrive, so a power cut can
//! lose at most that much of the newest records, records and head together: the chain stays
//! whole. Waiting for an fsync on every batch cost the earn path a third of its throughput
//! (docs/benchmarks.md).

use crate::audit::{AuditEvent, AuditRecord, Broken, ChainHead, verify};
use crate::store::{Applied, AuditRepository};
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Records gathered into one write at most.
const MAX_BATCH: usize = 1024;
/// How often written records are synced to disk while they arrive.
pub const SYNC_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// Pages read by `verify_all`.
const PAGE: usize = 1024;

type Reply = oneshot::Sender<ServiceResult<()>>;

/// Cheap to clone: clones share one appender.
#[derive(Clone)]
pub struct AuditLog {
    repo: Arc<dyn AuditRepository>,
    queue: mpsc::Sender<(String, AuditEvent, Reply)>,
    task: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// Whether records were written since the last sync.
    unsynced: Arc<AtomicBool>,
}

impl AuditLog {
    /// Starts the appender task (on the current Tokio runtime).
    pub fn start(repo: Arc<dyn AuditRepository>) -> Self {
        let (queue, rx) = mpsc::channel(4 * MAX_BATCH);
        let unsynced = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(append_loop(Arc::clone(&repo), rx, Arc::clone(&unsynced)));
        Self {
            repo,
            queue,
            task: Arc::new(tokio::sync::Mutex::new(Some(task))),
            unsynced,
        }
    }

    /// Stops taking records and waits until the appender has stored every queued one and let
    /// go of the store. Only the last handle can close; others return at once.
    pub async fn close(self) {
        let task = Arc::clone(&self.task);
        drop(self);
        if Arc::strong_count(&task) == 1
            && let Some(handle) = task.lock().await.take()
        {
            let _ = handle.await;
        }
    }

    /// Appends `event` to `tenant`'s chain (`*` for the platform's own acts); returns once the
    /// record is stored durably.
    pub async fn record(&self, tenant: &str, event: AuditEvent) -> ServiceResult<()> {
        let (reply, done) = oneshot::channel();
        self.queue
            .send((tenant.to_string(), event, reply))
            .await
            .map_err(|_| ServiceError::unavailable("the audit log has stopped"))?;
        done.await
            .map_err(|_| ServiceError::unavailable("the audit log has stopped"))?
    }

    /// Makes every record appended so far durable on disk (they reach the operating system
    /// before `record` returns, and are synced on a timer; this syncs now, as at shutdown).
    pub async fn sync(&self) -> ServiceResult<()> {
        // Cleared first: a record written after this is flagged again, one before is synced.
        if self.unsynced.swap(false, Ordering::SeqCst)
            && let Err(e) = self.repo.sync().await
        {
            self.unsynced.store(true, Ordering::SeqCst);
            return Err(e);
        }
        Ok(())
    }

    /// Records of `tenant` from sequence `from`, oldest first.
    pub async fn records(
        &self,
        tenant: &str,
        from: u64,
        limit: usize,
    ) -> ServiceResult<Vec<AuditRecord>> {
        self.repo.records(tenant, from.max(1), limit).await
    }

    /// Checks every tenant's chain against its head: per tenant, how many records checked
    /// out, or the first that does not.
    pub async fn verify_all(&self) -> ServiceResult<Vec<(String, Result<u64, Broken>)>> {
        let mut out = Vec::new();
        for tenant in self.repo.audited_tenants().await? {
            let checked = self.verify_tenant(&tenant).await?;
            out.push((tenant, checked));
        }
        Ok(out)
    }

    /// Checks one tenant's chain against its head: how many records checked out, or the
    /// first that does not.
    pub async fn verify_tenant(&self, tenant: &str) -> ServiceResult<Result<u64, Broken>> {
        let head = self.repo.head(tenant).await?;
        let mut records = Vec::new();
        loop {
            let from = records.len() as u64 + 1;
            let page = self.repo.records(tenant, from, PAGE).await?;
            let done = page.len() < PAGE;
            records.extend(page);
            if done {
                break;
            }
        }
        Ok(verify(tenant, &records, head.as_ref()))
    }
}

async fn append_loop(
    repo: Arc<dyn AuditRepository>,
    mut rx: mpsc::Receiver<(String, AuditEvent, Reply)>,
    unsynced: Arc<AtomicBool>,
) {
    let mut heads: HashMap<String, Option<ChainHead>> = HashMap::new();
    let mut ticker = tokio::time::interval(SYNC_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            received = rx.recv() => match received {
                Some(first) => first,
                None => break,
            },
            _ = ticker.tick() => {
                if unsynced.swap(false, Ordering::SeqCst)
                    && let Err(e) = repo.sync().await
                {
                    unsynced.store(true, Ordering::SeqCst);
                    tracing::warn!(error = %e, "syncing the audit log failed; retrying");
                }
                continue;
            }
        };
        let mut waiting = vec![first];
        while waiting.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => waiting.push(next),
                Err(_) => break,
            }
        }
        let mut by_tenant: HashMap<String, Vec<(AuditEvent, Reply)>> = HashMap::new();
        for (tenant, event, reply) in waiting {
            by_tenant.entry(tenant).or_default().push((event, reply));
        }
        for (tenant, items) in by_tenant {
            let (events, replies): (Vec<_>, Vec<_>) = items.into_iter().unzip();
            let count = events.len() as u64;
            let result = append(&*repo, &mut heads, &tenant, events).await;
            let outcome = if result.is_ok() { "ok" } else { "error" };
            metrics::counter!("audit_appends_total", "outcome" => outcome).increment(count);
            // Flagged before the replies: whoever syncs after a reply syncs this record.
            unsynced.store(true, Ordering::SeqCst);
            for reply in replies {
                let _ = reply.send(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(ServiceError::new(e.code, e.message.clone())),
                });
            }
        }
    }
    // The last handle is gone (shutdown): sync what is written.
    if unsynced.swap(false, Ordering::SeqCst)
        && let Err(e) = repo.sync().await
    {
        tracing::warn!(error = %e, "syncing the audit log at shutdown failed");
    }
}

/// Chains `events` after the tenant's head and stores them in one write; if the head moved
/// (another writer), reads it again and retries.
async fn append(
    repo: &dyn AuditRepository,
    heads: &mut HashMap<String, Option<ChainHead>>,
    tenant: &str,
    events: Vec<AuditEvent>,
) -> ServiceResult<()> {
    let mut events = events;
    for _ in 0..8 {
        let head = match heads.get(tenant) {
            Some(head) => head.clone(),
            None => repo.head(tenant).await?,
        };
        let mut records: Vec<AuditRecord> = Vec::with_capacity(events.len());
        for event in events {
            let prev = records
                .last()
                .map(AuditRecord::head)
                .or_else(|| head.clone());
            records.push(AuditRecord::next(tenant, prev.as_ref(), event));
        }
        match repo.append(tenant, head.as_ref(), &records).await {
            Ok(Applied::Yes) => {
                heads.insert(tenant.to_string(), records.last().map(AuditRecord::head));
                return Ok(());
            }
            Ok(Applied::Conflict) => {
                heads.remove(tenant);
                // Chained again after the head another writer moved.
                events = records.into_iter().map(|record| record.event).collect();
            }
            Err(e) => {
                heads.remove(tenant);
                return Err(e);
            }
        }
    }
    Err(ServiceError::unavailable(
        "the audit chain kept moving under this writer; retry",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Outcome;
    use crate::store::embedded::EmbeddedIdentityStore;
    use loyalty_common::Timestamp;

    fn event(n: usize) -> AuditEvent {
        AuditEvent {
            actor: "staff:1".into(),
            action: "ledger.earn".into(),
            target: format!("member:acme/m{n}"),
            outcome: Outcome::Allowed,
            request_id: format!("r{n}"),
            at: Timestamp(n as i64),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_records_form_one_valid_chain_per_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedIdentityStore::open(dir.path()).unwrap());
        let log = AuditLog::start(store.clone());
        let tasks: Vec<_> = (0..200)
            .map(|n| {
                let log = log.clone();
                let tenant = if n % 2 == 0 { "acme" } else { "globex" };
                tokio::spawn(async move { log.record(tenant, event(n)).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let verdicts = log.verify_all().await.unwrap();
        assert_eq!(verdicts.len(), 2);
        for (tenant, verdict) in verdicts {
            assert_eq!(verdict, Ok(100), "{tenant}");
        }
        // A second process's log (a restart) continues the same chains.
        let again = AuditLog::start(store);
        again.record("acme", event(999)).await.unwrap();
        let records = again.records("acme", 100, 10).await.unwrap();
        assert_eq!(
            records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [100, 101]
        );
    }
}
