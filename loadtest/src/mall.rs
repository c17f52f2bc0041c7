//! The points mall's redemption orders: the setup that gives every imported member points to
//! spend, and one order as the benchmark sends it (placed, then confirmed).

use crate::stats::Outcome;
use crate::target::Link;
use crate::workload::{RunContext, classify, imported_member_id};
use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use loyalty_proto::campaign::v1::campaign_service_client::CampaignServiceClient;
use loyalty_proto::campaign::v1::{ChangeMallOrderRequest, PlaceMallOrderRequest};
use loyalty_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use loyalty_proto::ledger::v1::{AdjustRequest, OpenWalletRequest, WalletRef};
use std::time::Duration;

/// Points each imported member is given for the run: far more than any run spends, so no
/// order is refused for want of points.
pub const FUNDED_POINTS: i64 = 100_000_000;

/// Opens the wallet of imported members `0..ctx.members` and adjusts it by
/// [`FUNDED_POINTS`], keyed by the member: a second run on the same tenant gives nothing more.
pub async fn fund(
    ctx: &RunContext,
    channels: &[Link],
    in_flight: usize,
    limit: Duration,
) -> Result<()> {
    let grpc: Vec<_> = channels
        .iter()
        .filter_map(|l| match l {
            Link::Grpc(channel) => Some(channel.clone()),
            Link::Rest(_) => None,
        })
        .collect();
    if grpc.is_empty() {
        bail!("the order phase runs over gRPC only: no gRPC connection to fund members on");
    }
    eprintln!(
        "setup: giving each of {} members {FUNDED_POINTS} points",
        ctx.members
    );
    let calls = futures::stream::iter(0..ctx.members)
        .map(|i| {
            let mut ledger = LedgerServiceClient::new(grpc[i as usize % grpc.len()].clone());
            let wallet = WalletRef {
                tenant_id: ctx.tenant.clone(),
                member_id: imported_member_id(i),
            };
            async move {
                let open = OpenWalletRequest {
                    wallet: Some(wallet.clone()),
                    idempotency_key: format!("bench-open-{i}"),
                };
                ledger.open_wallet(open).await?;
                let adjust = AdjustRequest {
                    wallet: Some(wallet),
                    idempotency_key: format!("bench-fund-{i}"),
                    points: FUNDED_POINTS,
                    reason: "benchmark funds".into(),
                };
                ledger.adjust(adjust).await?;
                Ok::<(), tonic::Status>(())
            }
        })
        .buffer_unordered(in_flight.max(1))
        .map_err(|status| anyhow::anyhow!("{:?}: {}", status.code(), status.message()));
    tokio::time::timeout(limit, calls.try_for_each(|()| async { Ok(()) }))
        .await
        .context("funding members took longer than --setup-timeout-secs")?
        .context("funding a member's wallet")
}

/// One redemption order: `PlaceMallOrder` of `item` for `member` under `order_id` (the unit
/// reserved, the points held), then `ChangeMallOrder` confirm (the points taken); with
/// `at_once`, one `PlaceMallOrder` that confirms too. SOLD_OUT is a refusal, not an error.
pub async fn order(
    client: &mut CampaignServiceClient<crate::target::Conn>,
    tenant: &str,
    (item, member, order_id): (&str, String, String),
    at_once: bool,
) -> Outcome {
    let place = PlaceMallOrderRequest {
        tenant_id: tenant.to_string(),
        item_id: item.to_string(),
        order_id: order_id.clone(),
        member_id: member,
        confirm: at_once,
        ..PlaceMallOrderRequest::default()
    };
    match client.place_mall_order(place).await {
        Err(status) => return classify(&status),
        Ok(_) if at_once => return Outcome::Ok,
        Ok(_) => {}
    }
    let confirm = ChangeMallOrderRequest {
        tenant_id: tenant.to_string(),
        item_id: item.to_string(),
        order_id,
        step: "confirm".into(),
        pickup_code: String::new(),
    };
    match client.change_mall_order(confirm).await {
        Ok(_) => Outcome::Ok,
        Err(status) => classify(&status),
    }
}
