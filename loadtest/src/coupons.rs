//! Setup of the redeem phase: one coupon of a template issued to every imported member, a
//! bounded number of calls at a time. Each issue is keyed by the member, so a second run on
//! the same tenant finds the coupons the first one issued.

use crate::target::Link;
use crate::workload::{RunContext, imported_member_id};
use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use loyalty_proto::campaign::v1::IssueCouponRequest;
use loyalty_proto::campaign::v1::campaign_service_client::CampaignServiceClient;
use std::time::Duration;

/// The codes of members `0..ctx.members`, in member order.
pub async fn issue(
    ctx: &RunContext,
    channels: &[Link],
    template: &str,
    in_flight: usize,
    limit: Duration,
) -> Result<Vec<String>> {
    if channels.is_empty() {
        bail!("no connections to issue coupons on");
    }
    eprintln!(
        "setup: issuing a coupon of {template} to each of {} members",
        ctx.members
    );
    let calls = futures::stream::iter(0..ctx.members)
        .map(|i| {
            let link = channels[i as usize % channels.len()].clone();
            let request = IssueCouponRequest {
                tenant_id: ctx.tenant.clone(),
                template_id: template.to_string(),
                member_id: imported_member_id(i),
                issue_key: format!("bench-coupon-{i}"),
            };
            async move {
                let code = match link {
                    Link::Grpc(channel) => CampaignServiceClient::new(channel)
                        .issue_coupon(request)
                        .await
                        .map(|reply| reply.into_inner().code)
                        .map_err(anyhow::Error::from),
                    Link::Rest(rest) => {
                        let r = &request;
                        rest.issue_coupon(&r.tenant_id, &r.template_id, &r.member_id, &r.issue_key)
                            .await
                    }
                };
                code.with_context(|| format!("issuing the coupon of member {i}"))
            }
        })
        .buffered(in_flight.max(1))
        .try_collect::<Vec<_>>();
    tokio::time::timeout(limit, calls)
        .await
        .context("issuing coupons took longer than --setup-timeout-secs")?
}
