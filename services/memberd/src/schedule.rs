//! The schedulers the services own (the ledger's housekeeping, the member service's segments
//! and review, the campaign service's sweep and payouts), each run by exactly one replica at
//! a time: the one holding its lease (decision 0018). On the embedded store the process is
//! alone with its data (the store's directory admits one process), so it holds every lease.
//!
//! Every round is safe to cut short or to repeat (its steps are keyed or conditional, as the
//! crash tests check), which is what lets a round be dropped the moment its lease is lost.

use crate::roles::Process;
use loyalty_scylla::lease::CqlLease;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// How long a lease outlives its holder's last renewal: after a `kill -9`, another replica
/// takes the scheduler over within this.
pub const LEASE_TTL: Duration = Duration::from_secs(15);
/// How often the holder renews its lease, and others ask for it.
const RENEW_EVERY: Duration = Duration::from_secs(5);

/// Who may run a scheduler.
pub enum SchedulerLease {
    /// This process alone has the data: it always may.
    Sole,
    /// A row on the cluster, shared by every replica.
    Cql(Box<CqlLease>),
}

impl SchedulerLease {
    /// The lease of `scheduler`, in `service`'s keyspace on ScyllaDB, or held alone on the
    /// embedded store.
    pub async fn of(
        process: &Process<'_>,
        service: &str,
        scheduler: &str,
    ) -> anyhow::Result<Arc<Self>> {
        let Some(scylla) = process.scylla else {
            return Ok(Arc::new(Self::Sole));
        };
        let lease = CqlLease::prepare(
            Arc::clone(&scylla.cluster),
            &scylla.config.keyspace(service),
            &scylla.config.local_datacenter,
            scheduler,
            &holder_name(),
            LEASE_TTL,
        )
        .await
        .map_err(|e| anyhow::anyhow!("preparing the lease of {scheduler}: {}", e.message))?;
        Ok(Arc::new(Self::Cql(Box::new(lease))))
    }

    /// Takes or renews the lease: whether this process holds it; None when the store could
    /// not say.
    async fn hold(&self, scheduler: &str) -> Option<bool> {
        match self {
            Self::Sole => Some(true),
            Self::Cql(lease) => match lease.hold().await {
                Ok(held) => Some(held),
                Err(e) => {
                    tracing::warn!(scheduler, error = %e.message, "asking for a scheduler's lease failed; asking again");
                    None
                }
            },
        }
    }

    async fn release(&self, scheduler: &str) {
        if let Self::Cql(lease) = self
            && let Err(e) = lease.release().await
        {
            tracing::warn!(scheduler, error = %e.message, "giving a scheduler's lease up failed; it lapses by itself");
        }
    }
}

/// This process's name on the leases it holds: the host's (a pod's name on Kubernetes), made
/// unique per start.
fn holder_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "memberd".into());
    format!("{host}-{}", ulid::Ulid::new())
}

/// Waits `span`, or until shutdown: whether to go on (false once shutting down).
pub async fn pause(span: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(span) => true,
        _ = shutdown.wait_for(|stop| *stop) => false,
    }
}

/// Runs `round` every `interval` while this process holds `scheduler`'s lease, until
/// shutdown. A round returns whether all of it succeeded; one still running when the lease
/// is lost is dropped, since another replica may start the same work.
pub async fn run_every<F, R>(
    scheduler: &'static str,
    lease: Arc<SchedulerLease>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut round: F,
) where
    F: FnMut() -> R,
    R: Future<Output = bool>,
{
    let (held_tx, mut held) = watch::channel(false);
    let (done, done_rx) = oneshot::channel();
    let keeper = tokio::spawn(keep(scheduler, lease, held_tx, done_rx));
    // The first round waits for the first answer about the lease, not for a whole interval.
    let _ = held.changed().await;
    loop {
        if *held.borrow_and_update() {
            let started = Instant::now();
            let outcome = tokio::select! {
                ok = round() => if ok { "ok" } else { "error" },
                _ = held.wait_for(|held| !*held) => {
                    tracing::warn!(scheduler, "the lease was lost during a round; the round stopped");
                    "abandoned"
                }
            };
            metrics::histogram!("scheduler_run_duration_seconds", "scheduler" => scheduler)
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("scheduler_runs_total", "scheduler" => scheduler, "outcome" => outcome)
                .increment(1);
        }
        if !pause(interval, &mut shutdown).await {
            break;
        }
    }
    // Given up only now that no round of this process runs.
    let _ = done.send(());
    let _ = keeper.await;
}

/// Keeps asking for the lease until `done`, then gives it up; tells `held` each answer. A
/// failed ask leaves the lease held only while it surely has not lapsed yet.
async fn keep(
    scheduler: &'static str,
    lease: Arc<SchedulerLease>,
    held: watch::Sender<bool>,
    mut done: oneshot::Receiver<()>,
) {
    let mut surely_held_until: Option<Instant> = None;
    loop {
        let asked = Instant::now();
        let now_held = match lease.hold(scheduler).await {
            Some(true) => {
                // Counted from before the ask: the TTL started no later than that.
                surely_held_until = Some(asked + LEASE_TTL - RENEW_EVERY);
                true
            }
            Some(false) => {
                surely_held_until = None;
                false
            }
            None => surely_held_until.is_some_and(|until| Instant::now() < until),
        };
        if now_held != *held.borrow() {
            match now_held {
                true => tracing::info!(scheduler, "this replica runs the scheduler now"),
                false => tracing::info!(scheduler, "another replica runs the scheduler now"),
            }
        }
        metrics::gauge!("scheduler_lease_held", "scheduler" => scheduler)
            .set(f64::from(u8::from(now_held)));
        held.send_replace(now_held);
        tokio::select! {
            _ = tokio::time::sleep(RENEW_EVERY) => {}
            _ = &mut done => break,
        }
    }
    held.send_replace(false);
    metrics::gauge!("scheduler_lease_held", "scheduler" => scheduler).set(0.0);
    lease.release(scheduler).await;
}
