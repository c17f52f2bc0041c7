//! The two metric families every store adapter records, so one dashboard and one alert read
//! every deployment: `store_operation_duration_seconds{service,table,op}` (a histogram) and
//! `store_operation_errors_total{service,table,op}`.
//!
//! - On the CQL store, `table` is the table a statement names and `op` the statement's name,
//!   or `batch` for a batch (named after its first statement's table).
//! - On the embedded store, a point read is `op="get"` on its keyspace, and a write is
//!   `op="write"` on `table="journal"`: one batch appended to the store's journal, whatever
//!   keyspaces it touches. The campaign store, which syncs a group of writes at once, times
//!   each sync as `op="sync"`. Range scans are not timed: they serve listings and the
//!   publisher, whose lag has a metric of its own.

use std::time::Instant;

pub const DURATION: &str = "store_operation_duration_seconds";
pub const ERRORS: &str = "store_operation_errors_total";

/// The handles of one operation, registered once so that recording costs no label lookup:
/// for statements run on every request.
#[derive(Clone)]
pub struct StoreOp {
    duration: metrics::Histogram,
    errors: metrics::Counter,
}

impl StoreOp {
    pub fn new(service: &str, table: &str, op: &str) -> Self {
        let labels = [
            ("service", service.to_string()),
            ("table", table.to_string()),
            ("op", op.to_string()),
        ];
        Self {
            duration: metrics::histogram!(DURATION, &labels),
            errors: metrics::counter!(ERRORS, &labels),
        }
    }

    /// Records an operation started at `started` that ended with `result`.
    pub fn observe<T, E>(&self, started: Instant, result: &Result<T, E>) {
        self.duration.record(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.errors.increment(1);
        }
    }
}

/// Runs `operation` of `service`'s embedded store and records it (its handles looked up by
/// label, a few hundred nanoseconds: for disk reads and journal writes, not cache hits).
pub fn timed<T, E>(
    service: &'static str,
    table: &str,
    op: &'static str,
    operation: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let started = Instant::now();
    let result = operation();
    let elapsed = started.elapsed().as_secs_f64();
    let table = table.to_string();
    if result.is_err() {
        metrics::counter!(ERRORS, "service" => service, "table" => table.clone(), "op" => op)
            .increment(1);
    }
    metrics::histogram!(DURATION, "service" => service, "table" => table, "op" => op)
        .record(elapsed);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    #[test]
    fn an_operation_is_timed_and_its_failure_counted_under_its_labels() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let ok: Result<u8, ()> = timed("member", "profiles", "get", || Ok(1));
            assert_eq!(ok, Ok(1));
            let failed: Result<u8, &str> = timed("member", "journal", "write", || Err("disk"));
            assert_eq!(failed, Err("disk"));
            let op = StoreOp::new("ledger", "wallets", "batch");
            op.observe(Instant::now(), &Err::<(), ()>(()));
        });
        let text = handle.render();
        for labels in [
            r#"service="member",table="profiles",op="get""#,
            r#"service="member",table="journal",op="write""#,
            r#"service="ledger",table="wallets",op="batch""#,
        ] {
            assert!(
                text.contains(&format!("{DURATION}_count{{{labels}}} 1")),
                "{text}"
            );
        }
        for labels in [
            r#"service="member",table="journal",op="write""#,
            r#"service="ledger",table="wallets",op="batch""#,
        ] {
            assert!(text.contains(&format!("{ERRORS}{{{labels}}} 1")), "{text}");
        }
        // A read that succeeded counts no error.
        let read_errors = format!(r#"{ERRORS}{{service="member",table="profiles""#);
        assert!(!text.contains(&read_errors), "{text}");
    }
}
