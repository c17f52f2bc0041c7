//! Background work: due housekeeping (pending activation, hold expiry, lot expiry) and recovery
//! of transfers a crash left half done, one pass at a time. The binary runs the passes, in
//! one replica at a time.

use crate::service::Ledger;

/// How much the scheduler does per tick, so one tick never runs for long.
const BATCH: usize = 500;
/// Transfers younger than this are left to the request that is driving them.
const TRANSFER_GRACE_SECS: i64 = 30;

/// One pass of the scheduler's work; errors are logged and retried on the next pass. Whether
/// all of it succeeded.
pub async fn tick(ledger: &Ledger) -> bool {
    let mut ok = true;
    if let Err(e) = ledger.run_due(BATCH).await {
        ok = false;
        tracing::warn!(
            code = e.code.as_str(),
            "housekeeping pass failed; retrying next tick"
        );
    }
    if let Err(e) = ledger.recover_transfers(TRANSFER_GRACE_SECS, BATCH).await {
        ok = false;
        tracing::warn!(
            code = e.code.as_str(),
            "transfer recovery failed; retrying next tick"
        );
    }
    ok
}
