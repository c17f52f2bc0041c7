//! `loadgen bench --watch-events <nats-url>`: a partner-side consumer of the ledger's stream
//! during the run. It measures publication lag end to end, from the entry's commit time (the
//! event's `time`) to its arrival here, in an HDR histogram, and counts events.

use anyhow::{Context, Result};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use hdrhistogram::Histogram;
use loyalty_events::Envelope;
use loyalty_events::envelope::subject;
use serde::Serialize;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lag figures of a run.
#[derive(Debug, Serialize)]
pub struct LagReport {
    pub events: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl fmt::Display for LagReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "events received={} lag_p50_ms={:.1} lag_p99_ms={:.1} lag_p999_ms={:.1} lag_max_ms={:.1}",
            self.events, self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms
        )
    }
}

pub struct Watcher {
    lag_ms: Arc<Mutex<Histogram<u64>>>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Watcher {
    /// Starts consuming `tenant`'s new ledger events from the stream `LOYALTY_LEDGER` at `url`.
    pub async fn start(url: &str, tenant: &str) -> Result<Self> {
        let client = async_nats::connect(url)
            .await
            .with_context(|| format!("--watch-events: connecting to {url}"))?;
        let js = jetstream::new(client);
        // memberd creates the stream when its publisher starts; wait for it briefly.
        let deadline = Instant::now() + Duration::from_secs(30);
        let stream = loop {
            match js.get_stream("LOYALTY_LEDGER").await {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => return Err(e).context("--watch-events: stream LOYALTY_LEDGER"),
            }
        };
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: subject(tenant, "ledger", ">"),
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .context("--watch-events: creating an ordered consumer")?;
        let lag_ms = Arc::new(Mutex::new(
            Histogram::new_with_bounds(1, 3_600_000, 3).context("lag histogram")?,
        ));
        let sink = Arc::clone(&lag_ms);
        let task = tokio::spawn(async move {
            let mut messages = consumer.messages().await?;
            while let Some(message) = messages.next().await {
                let message = message?;
                let event: Envelope = serde_json::from_slice(&message.payload)?;
                let lag = (chrono::Utc::now() - event.time).num_milliseconds().max(1) as u64;
                let mut h = sink.lock().unwrap_or_else(|p| p.into_inner());
                h.saturating_record(lag);
            }
            Ok(())
        });
        Ok(Self { lag_ms, task })
    }

    fn count(&self) -> u64 {
        self.lag_ms.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Waits until `expected` events arrived (or nothing arrived for `quiet`), then reports.
    pub async fn finish(self, expected: u64, quiet: Duration) -> LagReport {
        let mut last = (self.count(), Instant::now());
        while self.count() < expected && last.1.elapsed() < quiet {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.count();
            if now != last.0 {
                last = (now, Instant::now());
            }
        }
        self.task.abort();
        let h = self.lag_ms.lock().unwrap_or_else(|p| p.into_inner());
        LagReport {
            events: h.len(),
            p50_ms: h.value_at_quantile(0.5) as f64,
            p99_ms: h.value_at_quantile(0.99) as f64,
            p999_ms: h.value_at_quantile(0.999) as f64,
            max_ms: h.max() as f64,
        }
    }
}
