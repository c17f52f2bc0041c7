//! The store's one writer thread, and group commit. Every write is a job sent to the thread;
//! the thread runs each job alone (so a redemption reads its counters and writes them back
//! with nothing in between), each job committing its batch to the journal unsynced, and
//! once the queue is empty, or a group is full, syncs the journal once for the whole group
//! before any job of it is answered. Under 32 concurrent checkouts that is one sync per
//! dozen writes instead of one each, and no thread per write waiting on a lock.
//!
//! Nothing unsynced is ever shown: a write is answered only once its batch is durable, a
//! refusal or a replay too (it may rest on another job's unsynced write), a read waits for
//! the batches committed before it, and the outbox hands on events only up to the last one
//! synced. A `kill -9` therefore loses only writes nobody was told about.

use super::{EmbeddedCampaignStore, Inner, storage};
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::store_metrics::timed;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use tokio::sync::{oneshot, watch};

/// Most jobs synced together: bounds how long the first of a group waits for its answer.
const MAX_GROUP: usize = 256;

/// A write: it runs on the writer thread and hands back how to answer once synced.
type Job = Box<dyn FnOnce(&Inner) -> Answer + Send>;
/// Sends a job's outcome, or the sync's failure, to its caller.
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;

/// What has been committed and what of it is durable.
pub(super) struct Durability {
    /// Batches committed to the journal; moved on the writer thread only.
    committed: AtomicU64,
    /// Batches known to be synced, for readers to wait on.
    durable: watch::Sender<u64>,
    /// The newest outbox sequence number known to be synced.
    durable_seq: AtomicU64,
}

impl Durability {
    /// A store opened from disk: all it holds is durable.
    pub(super) fn recovered(last_seq: u64) -> Self {
        Self {
            committed: AtomicU64::new(0),
            durable: watch::Sender::new(0),
            durable_seq: AtomicU64::new(last_seq),
        }
    }

    /// Counts one more committed batch (on the writer thread).
    pub(super) fn committed(&self) {
        self.committed.fetch_add(1, Ordering::SeqCst);
    }

    /// The newest outbox sequence number the publisher may hand on.
    pub(super) fn durable_seq(&self) -> u64 {
        self.durable_seq.load(Ordering::SeqCst)
    }
}

/// The writer thread and the way to it; dropping the last handle stops the thread and
/// waits for it, so the database is closed when the store is.
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start(inner: Arc<Inner>) -> ServiceResult<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("campaign-writer".into())
            .spawn(move || run(&inner, &queue))
            .map_err(|e| ServiceError::unavailable(format!("campaign store writer: {e}")))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(inner: &Inner, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut answers = vec![first(inner)];
        while answers.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => answers.push(job(inner)),
                Err(_) => break,
            }
        }
        let synced = sync(inner).map_err(|e| e.message);
        for answer in answers {
            answer(synced.clone());
        }
    }
}

/// Syncs everything committed so far, once, and makes it visible.
fn sync(inner: &Inner) -> ServiceResult<()> {
    let d = &inner.durability;
    let (upto, seq) = (
        d.committed.load(Ordering::SeqCst),
        inner.last_seq.load(Ordering::SeqCst),
    );
    if *d.durable.borrow() < upto {
        timed("campaign", "journal", "sync", || {
            inner
                .db
                .persist(fjall::PersistMode::SyncAll)
                .map_err(storage)
        })?;
        metrics::counter!("campaign_store_syncs_total").increment(1);
        d.durable_seq.store(seq, Ordering::SeqCst);
        d.durable.send_replace(upto);
    }
    Ok(())
}

impl EmbeddedCampaignStore {
    /// Runs `f` on the writer thread, alone among writers, and answers once what it
    /// committed, and whatever it read that others committed, is durable.
    pub(super) async fn write_locked<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> ServiceResult<T> + Send + 'static,
    ) -> ServiceResult<T> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |inner| {
            let outcome = f(inner);
            Box::new(move |synced: Result<(), String>| {
                let _ = reply.send(match synced {
                    Ok(()) => outcome,
                    Err(e) => Err(ServiceError::unavailable(format!(
                        "campaign store: the write could not be synced ({e}); retry"
                    ))),
                });
            })
        });
        let closed = || ServiceError::unavailable("the campaign store is closed");
        let jobs = self.writer.jobs.as_ref().ok_or_else(closed)?;
        jobs.send(job).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Waits until every batch committed before this call is durable, so a read never
    /// answers with a write that a crash could still take back.
    pub(super) async fn settled(&self) -> ServiceResult<()> {
        let d = &self.inner.durability;
        let upto = d.committed.load(Ordering::SeqCst);
        if *d.durable.borrow() >= upto {
            // Nothing unsynced: the common case for reads between writes.
            return Ok(());
        }
        let mut durable = d.durable.subscribe();
        durable
            .wait_for(|synced| *synced >= upto)
            .await
            .map(|_| ())
            .map_err(|_| ServiceError::unavailable("the campaign store is closed"))
    }
}
