//! Background work: due housekeeping (pending activation, hold expiry, lot expiry) and recovery
//! of transfers a crash left half done. Runs until the shutdown signal.

use crate::service::Ledger;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How much the scheduler does per tick, so one tick never runs for long.
const BATCH: usize = 500;
/// Transfers younger than this are left to the request that is driving them.
const TRANSFER_GRACE_SECS: i64 = 30;

/// Runs the scheduler every `interval` until `shutdown` turns true.
pub async fn run(ledger: Arc<Ledger>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        tick(&ledger).await;
    }
}

/// One pass of the scheduler's work; errors are logged and retried on the next tick.
pub async fn tick(ledger: &Ledger) {
    if let Err(e) = ledger.run_due(BATCH).await {
        tracing::warn!(
            code = e.code.as_str(),
            "housekeeping pass failed; retrying next tick"
        );
    }
    if let Err(e) = ledger.recover_transfers(TRANSFER_GRACE_SECS, BATCH).await {
        tracing::warn!(
            code = e.code.as_str(),
            "transfer recovery failed; retrying next tick"
        );
    }
}
