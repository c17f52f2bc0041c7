//! Setup: open a wallet for every benchmark member, a bounded number of calls at a time, with
//! progress on stderr.

use crate::target::Link;
use crate::workload::{RunContext, member_id};
use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use loyalty_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use loyalty_proto::ledger::v1::{OpenWalletRequest, WalletRef};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Opens wallets `0..ctx.members` with at most `in_flight` calls outstanding, spread over
/// `channels`. Fails on the first error, or when the whole setup exceeds `limit`.
pub async fn open_wallets(
    ctx: &RunContext,
    channels: &[Link],
    in_flight: usize,
    limit: Duration,
) -> Result<()> {
    if channels.is_empty() {
        bail!("no connections to open wallets on");
    }
    let done = Arc::new(AtomicU64::new(0));
    let progress = tokio::spawn(report_progress(done.clone(), u64::from(ctx.members)));
    let calls = futures::stream::iter(0..ctx.members)
        .map(|i| {
            let link = channels[i as usize % channels.len()].clone();
            let wallet = ctx.wallet(i);
            let key = format!("{}-open-{i}", ctx.run_id);
            let done = done.clone();
            async move {
                open_wallet(link, wallet, key)
                    .await
                    .with_context(|| format!("opening the wallet of member {}", member_id(i)))?;
                done.fetch_add(1, Ordering::Relaxed);
                Ok::<(), anyhow::Error>(())
            }
        })
        .buffer_unordered(in_flight.max(1))
        .try_for_each(|()| async { Ok(()) });
    let started = Instant::now();
    let result = tokio::time::timeout(limit, calls).await;
    progress.abort();
    let opened = done.load(Ordering::Relaxed);
    let cr = if std::io::stderr().is_terminal() {
        "\r"
    } else {
        ""
    };
    eprintln!(
        "{cr}setup: opened {opened}/{} wallets in {:.1} s",
        ctx.members,
        started.elapsed().as_secs_f64()
    );
    result.with_context(|| {
        format!(
            "setup did not finish within {} s ({opened}/{} wallets opened)",
            limit.as_secs(),
            ctx.members
        )
    })?
}

async fn open_wallet(link: Link, wallet: WalletRef, idempotency_key: String) -> Result<()> {
    match link {
        Link::Grpc(channel) => {
            let request = OpenWalletRequest {
                wallet: Some(wallet),
                idempotency_key,
            };
            LedgerServiceClient::new(channel)
                .open_wallet(request)
                .await
                .map_err(|status| {
                    anyhow::anyhow!("OpenWallet: {:?}: {}", status.code(), status.message())
                })?;
            Ok(())
        }
        Link::Rest(rest) => rest.open_wallet(&wallet, &idempotency_key).await,
    }
}

/// Prints `opened n/total` every half second: in place on a terminal, one line every five
/// seconds otherwise (so logs stay short).
async fn report_progress(done: Arc<AtomicU64>, total: u64) {
    let tty = std::io::stderr().is_terminal();
    let every = if tty {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(5)
    };
    let started = Instant::now();
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        tick.tick().await;
        let n = done.load(Ordering::Relaxed);
        let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let pct = if total > 0 {
            100.0 * n as f64 / total as f64
        } else {
            100.0
        };
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(
                err,
                "\rsetup: opened {n}/{total} wallets ({pct:.0}%, {rate:.0}/s)   "
            )
        } else {
            writeln!(
                err,
                "setup: opened {n}/{total} wallets ({pct:.0}%, {rate:.0}/s)"
            )
        };
        let _ = err.flush();
    }
}
