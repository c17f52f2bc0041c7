//! Per-phase counters and latency histograms, and the report line printed for each phase.

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Highest latency the histograms track: anything slower is clamped to it.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// An open-loop run whose own send lag reaches this at p99 is flagged: the load generator lost
/// its core and the latencies partly measure that, not the server.
const GENERATOR_LAG_FLAG_MS: f64 = 5.0;

/// How one operation ended.
#[derive(Debug)]
pub enum Outcome {
    /// The server did the work.
    Ok,
    /// The server refused for a business reason the workload expects (not enough points).
    Rejected,
    /// Anything else: transport failure, timeout, unexpected status. The text is a short
    /// low-cardinality kind, e.g. `Unavailable` or `FailedPrecondition/HOLD_NOT_ACTIVE`.
    Error(String),
}

/// What one client (or the merge of all clients) saw during a phase.
pub struct Stats {
    /// Latency in microseconds of every operation that got an answer (ok or rejected).
    pub latency_us: Histogram<u64>,
    /// Open loop only: how late a worker that waited for its slot actually woke to send it.
    /// That lateness is the load generator's own (its runtime or its core), not the server's.
    pub send_lag_us: Histogram<u64>,
    pub ok: u64,
    pub rejected: u64,
    pub errors: u64,
    /// Error count per kind, for the diagnostics printed after a phase.
    pub error_kinds: BTreeMap<String, u64>,
}

impl Stats {
    /// Empty stats: three significant digits over 1 µs ..= 1 h.
    pub fn new() -> Result<Self> {
        Ok(Self {
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .context("creating a latency histogram")?,
            send_lag_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .context("creating a send-lag histogram")?,
            ok: 0,
            rejected: 0,
            errors: 0,
            error_kinds: BTreeMap::new(),
        })
    }

    pub fn record(&mut self, outcome: Outcome, latency: Duration) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Rejected => self.rejected += 1,
            Outcome::Error(kind) => {
                self.errors += 1;
                *self.error_kinds.entry(kind).or_insert(0) += 1;
                return;
            }
        }
        let us = u64::try_from(latency.as_micros()).unwrap_or(MAX_LATENCY_US);
        self.latency_us
            .saturating_record(us.clamp(1, MAX_LATENCY_US));
    }

    /// Records how late a worker woke for its slot.
    pub fn record_send_lag(&mut self, lag: Duration) {
        let us = u64::try_from(lag.as_micros()).unwrap_or(MAX_LATENCY_US);
        self.send_lag_us
            .saturating_record(us.clamp(1, MAX_LATENCY_US));
    }

    pub fn merge(&mut self, other: Stats) -> Result<()> {
        // Every histogram has the same bounds, so this only fails on a bug.
        self.latency_us
            .add(&other.latency_us)
            .context("merging latency histograms")?;
        self.send_lag_us
            .add(&other.send_lag_us)
            .context("merging send-lag histograms")?;
        self.ok += other.ok;
        self.rejected += other.rejected;
        self.errors += other.errors;
        for (kind, n) in other.error_kinds {
            *self.error_kinds.entry(kind).or_insert(0) += n;
        }
        Ok(())
    }

    /// Summarises the phase. `ops` counts every operation that got an answer, so rejected
    /// redemptions (real work for the server) count; errors do not.
    pub fn report(&self, phase: &str, elapsed: Duration, target_rate: Option<f64>) -> PhaseReport {
        let ops = self.ok + self.rejected;
        let secs = elapsed.as_secs_f64();
        let ms = |q: f64| self.latency_us.value_at_quantile(q) as f64 / 1000.0;
        let lag = &self.send_lag_us;
        let send_lag = (!lag.is_empty()).then(|| SendLag {
            p50_ms: lag.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: lag.value_at_quantile(0.99) as f64 / 1000.0,
            p999_ms: lag.value_at_quantile(0.999) as f64 / 1000.0,
            max_ms: lag.max() as f64 / 1000.0,
        });
        PhaseReport {
            phase: phase.to_string(),
            ops,
            rejected: self.rejected,
            errors: self.errors,
            elapsed_s: secs,
            throughput_per_s: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
            target_rate_per_s: target_rate,
            mean_ms: self.latency_us.mean() / 1000.0,
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: self.latency_us.max() as f64 / 1000.0,
            error_kinds: self.error_kinds.clone(),
            send_lag,
        }
    }
}

/// The load generator's own lateness in an open-loop phase.
#[derive(Debug, Clone, Serialize)]
pub struct SendLag {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// The figures of one phase, printed as one `key=value` line and written to the JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub phase: String,
    pub ops: u64,
    pub rejected: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub throughput_per_s: f64,
    /// For open-loop phases: the schedule's rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rate_per_s: Option<f64>,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub error_kinds: BTreeMap<String, u64>,
    /// Open-loop phases: the generator's own send lag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_lag: Option<SendLag>,
}

impl PhaseReport {
    /// Whether the load generator itself lagged enough that the latencies are suspect.
    pub fn generator_lagged(&self) -> bool {
        self.send_lag
            .as_ref()
            .is_some_and(|lag| lag.p99_ms >= GENERATOR_LAG_FLAG_MS)
    }
}

impl fmt::Display for PhaseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "phase={} ops={} throughput_per_s={:.1} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} \
             errors={} rejected={}",
            self.phase,
            self.ops,
            self.throughput_per_s,
            self.p50_ms,
            self.p99_ms,
            self.p999_ms,
            self.errors,
            self.rejected
        )?;
        if let Some(lag) = &self.send_lag {
            write!(
                f,
                " send_lag_p50_ms={:.3} send_lag_p99_ms={:.3} send_lag_p999_ms={:.3} \
                 send_lag_max_ms={:.3}",
                lag.p50_ms, lag.p99_ms, lag.p999_ms, lag.max_ms
            )?;
            if self.generator_lagged() {
                write!(f, " FLAGGED=load-generator-lagged")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_percentiles() {
        let mut a = Stats::new().unwrap();
        for ms in 1..=100 {
            a.record(Outcome::Ok, Duration::from_millis(ms));
        }
        let mut b = Stats::new().unwrap();
        b.record(Outcome::Rejected, Duration::from_millis(1));
        b.record(Outcome::Error("Unavailable".into()), Duration::from_secs(5));
        a.merge(b).unwrap();
        let r = a.report("earn", Duration::from_secs(2), None);
        assert_eq!((r.ops, r.rejected, r.errors), (101, 1, 1));
        assert!((r.throughput_per_s - 50.5).abs() < 1e-9);
        assert!((r.p50_ms - 50.0).abs() < 0.1, "{}", r.p50_ms);
        assert!((r.max_ms - 100.0).abs() < 0.1);
        assert_eq!(r.error_kinds.get("Unavailable"), Some(&1));
        let line = r.to_string();
        assert!(
            line.starts_with("phase=earn ops=101 throughput_per_s=50.5 p50_ms="),
            "{line}"
        );
        assert!(line.ends_with("errors=1 rejected=1"), "{line}");
    }
}
