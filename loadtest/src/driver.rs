//! The two load loops. Both are bounded in time: no request starts after the deadline, and
//! every request is bounded by the channel's request timeout.

use crate::stats::{Outcome, Stats};
use crate::workload::Worker;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};

/// Pause after a failed request so a dead server does not turn the loop into a busy spin.
const ERROR_BACKOFF: Duration = Duration::from_millis(1);

/// Closed loop: every worker sends its next request as soon as the previous one returns, until
/// `duration` has passed. Returns the merged stats and the wall time until the last reply.
pub async fn closed_loop(workers: Vec<Worker>, duration: Duration) -> Result<(Stats, Duration)> {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks = workers
        .into_iter()
        .map(|mut worker| {
            tokio::spawn(async move {
                let mut stats = Stats::new()?;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let outcome = worker.op().await;
                    let failed = matches!(outcome, Outcome::Error(_));
                    stats.record(outcome, sent.elapsed());
                    if failed {
                        sleep(ERROR_BACKOFF).await;
                    }
                }
                Ok(stats)
            })
        })
        .collect();
    let stats = join(tasks).await?;
    Ok((stats, start.elapsed()))
}

/// Open loop: requests are scheduled at a fixed `rate` per second from the start, whatever the
/// server does; any free worker takes the next slot. Latency is measured from the slot's
/// intended time when the slot was taken late (all workers busy: the server is behind), so
/// queueing is not hidden (no coordinated omission). When a worker is early it sleeps to the
/// slot and measures from when it actually sends, so the timer's ~1 ms granularity is not
/// charged to the server. Slots still unsent `grace` after the deadline count as errors.
pub async fn open_loop(
    workers: Vec<Worker>,
    duration: Duration,
    rate: f64,
    grace: Duration,
) -> Result<(Stats, Duration)> {
    anyhow::ensure!(
        rate.is_finite() && rate > 0.0,
        "open-loop rate must be positive, got {rate}"
    );
    // A short lead so every worker is waiting before the first slot.
    let start = Instant::now() + Duration::from_millis(20);
    let deadline = start + duration;
    let hard_stop = deadline + grace;
    let next_slot = Arc::new(AtomicU64::new(0));
    let tasks = workers
        .into_iter()
        .map(|mut worker| {
            let next_slot = next_slot.clone();
            tokio::spawn(async move {
                let mut stats = Stats::new()?;
                loop {
                    let slot = next_slot.fetch_add(1, Ordering::Relaxed);
                    let intended = start + Duration::from_secs_f64(slot as f64 / rate);
                    if intended >= deadline {
                        break;
                    }
                    let now = Instant::now();
                    if now >= hard_stop {
                        stats.record(Outcome::Error("schedule-overrun".into()), Duration::ZERO);
                        continue;
                    }
                    let measured_from = if now < intended {
                        sleep_until(intended).await;
                        let woke = Instant::now();
                        stats.record_send_lag(woke.saturating_duration_since(intended));
                        woke
                    } else {
                        intended
                    };
                    let outcome = worker.op().await;
                    stats.record(outcome, measured_from.elapsed());
                }
                Ok(stats)
            })
        })
        .collect();
    let stats = join(tasks).await?;
    Ok((stats, Instant::now().saturating_duration_since(start)))
}

async fn join(tasks: Vec<JoinHandle<Result<Stats>>>) -> Result<Stats> {
    let mut total = Stats::new()?;
    for task in tasks {
        let stats = task.await.context("a load worker panicked")??;
        total.merge(stats)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Kind, RunContext};
    use tonic::transport::Endpoint;

    async fn echo_workers(count: usize) -> Vec<Worker> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(crate::echo::serve_on(listener, std::future::pending()));
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .timeout(Duration::from_secs(2))
            .connect()
            .await
            .unwrap();
        let ctx = Arc::new(RunContext {
            run_id: "t".into(),
            tenant: "bench-t".into(),
            members: 10,
            sale: String::new(),
            codes: std::sync::OnceLock::new(),
            items: Vec::new(),
            orders_at_once: false,
        });
        let channel = tonic::service::interceptor::InterceptedService::new(
            channel,
            crate::target::Credential::default(),
        );
        (0..count)
            .map(|i| {
                let link = crate::target::Link::Grpc(channel.clone());
                Worker::new(ctx.clone(), "echo", i, Kind::Echo, link)
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closed_loop_stops_at_the_deadline() {
        let workers = echo_workers(4).await;
        let (stats, elapsed) = closed_loop(workers, Duration::from_millis(300))
            .await
            .unwrap();
        assert!(stats.ok > 0);
        assert_eq!(stats.errors, 0);
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_loop_keeps_the_rate() {
        let workers = echo_workers(8).await;
        let (stats, elapsed) = open_loop(
            workers,
            Duration::from_secs(1),
            400.0,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert_eq!(stats.errors, 0);
        // Slots 0..400 start within the second: exactly 400 requests.
        assert_eq!(stats.ok, 400, "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }
}
