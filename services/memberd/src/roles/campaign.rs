//! The campaign service role: its store, the member service it reads tiers and segments
//! from (through the member service's client), the ledger it pays coupons' bonus points
//! into (through the ledger's client), its outbox's publisher, its sweeps, and its gRPC
//! service.

use super::Process;
use super::platform::PlatformWork;
use crate::schedule::{SchedulerLease, run_every};
use crate::storage::{ScyllaStorage, Storage};
use anyhow::Context;
use loyalty_campaign::client::{CampaignClient, GrpcCampaignClient, InProcessCampaigns};
use loyalty_campaign::grpc::CampaignGrpc;
use loyalty_campaign::grpc_access;
use loyalty_campaign::service::{Campaigns, triggers};
use loyalty_campaign::store::cql::ScyllaCampaignStore;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_campaign::trigger_feed::{Handler, TriggerFeed};
use loyalty_events::subscribe::SubscriptionSpec;
use loyalty_identity::grpc_guard::Guarded;
use loyalty_ledger::client::LedgerClient;
use loyalty_member::client::MemberClient;
use loyalty_proto::campaign::v1::campaign_service_server::CampaignServiceServer;
use std::sync::Arc;
use std::time::Duration;

pub type CampaignServer = Guarded<CampaignServiceServer<CampaignGrpc>>;

/// The campaign service of this process.
pub struct CampaignRole {
    pub campaigns: Arc<Campaigns>,
    /// Its client, for the roles of this process that call it.
    pub client: Arc<dyn CampaignClient>,
    /// Its gRPC service, where other processes reach it.
    pub server: CampaignServer,
}

/// The campaign service on ScyllaDB when `storage = "scylla"`, else on the embedded store
/// under `<data_dir>/campaign`.
pub async fn open(
    config: &crate::config::MemberdConfig,
    members: Option<Arc<dyn MemberClient>>,
) -> anyhow::Result<Arc<Campaigns>> {
    if config.storage == Storage::Scylla {
        let scylla = ScyllaStorage::open(config, &["campaign"]).await?;
        return Ok(Arc::new(Campaigns::new(
            scylla_store(&scylla).await?,
            members,
        )));
    }
    let dir = config.data_dir.join("campaign");
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the campaign store's directory {}", dir.display()))?;
    let store = EmbeddedCampaignStore::open(&dir).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok(Arc::new(Campaigns::new(Arc::new(store), members)))
}

/// The campaign store on the cluster's campaign keyspace.
async fn scylla_store(scylla: &ScyllaStorage) -> anyhow::Result<Arc<dyn CampaignRepository>> {
    let store =
        ScyllaCampaignStore::prepare(Arc::clone(&scylla.cluster), &scylla.keyspace("campaign"))
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))
            .context("preparing the campaign store on ScyllaDB")?;
    Ok(Arc::new(store))
}

/// Starts the campaign service, reading members through `members` and paying bonus points
/// through `ledger`, with its gRPC service.
pub async fn start(
    process: &mut Process<'_>,
    members: Arc<dyn MemberClient>,
    ledger: Arc<dyn LedgerClient>,
) -> anyhow::Result<CampaignRole> {
    let store = match process.scylla {
        Some(scylla) => scylla_store(scylla).await?,
        None => Arc::clone(open(process.config, None).await?.repository()),
    };
    let settings = &process.config.campaign;
    let campaigns = Campaigns::new(store, Some(members))
        .with_ledger(ledger)
        .with_expiring_notice(settings.expiring_notice_days)
        .with_saga_grace(settings.saga_grace_secs);
    let campaigns = match process.regions.clone() {
        Some(view) => campaigns.with_regions(view),
        None => campaigns,
    };
    let campaigns = Arc::new(campaigns);
    let platform = PlatformWork::of(process.config, "campaign")?;
    if let Some(events) = process.events {
        let outbox = loyalty_campaign::events::outbox(Arc::clone(campaigns.repository()));
        process.tasks.extend(events.start(Arc::new(outbox)));
        let filters = [("member", triggers::MEMBER_EVENTS)]
            .into_iter()
            .chain(triggers::LEDGER_EVENTS.map(|f| ("ledger", f)));
        for (n, (service, filter)) in filters.enumerate() {
            let spec = SubscriptionSpec::new(&format!("campaign-triggers-{n}"), service, filter);
            let (rewarding, platform) = (Arc::clone(&campaigns), platform.clone());
            // Each delivery is the platform's work.
            let handle: Handler = Arc::new(move |event| {
                let (campaigns, platform) = (Arc::clone(&rewarding), platform.clone());
                Box::pin(async move {
                    let rewarding = campaigns.on_event(&event);
                    platform.run("campaign-trigger", rewarding).await
                })
            });
            let feed = TriggerFeed::new(
                Arc::clone(&campaigns),
                events.subscriptions(),
                events.bus(),
                spec,
                handle,
            );
            let shutdown = process.shutdown.clone();
            process.tasks.push(tokio::spawn(async move {
                feed.run(shutdown).await;
                Ok(())
            }));
        }
    }
    let sweep = Duration::from_secs(settings.sweep_interval_secs.max(1));
    let (swept, sweeper) = (Arc::clone(&campaigns), platform.clone());
    let lease = SchedulerLease::of(process, "campaign", "campaign-sweep").await?;
    let shutdown = process.shutdown.clone();
    process.tasks.push(tokio::spawn(async move {
        let round = || sweeper.run("campaign-sweep", sweep_round(&swept));
        run_every("campaign-sweep", lease, sweep, shutdown, round).await;
        Ok(())
    }));
    let payout = Duration::from_millis(settings.payout_interval_ms.max(10));
    let paying = Arc::clone(&campaigns);
    let lease = SchedulerLease::of(process, "campaign", "campaign-payout").await?;
    let shutdown = process.shutdown.clone();
    process.tasks.push(tokio::spawn(async move {
        let round = || platform.run("campaign-payout", pay_out_round(&paying));
        run_every("campaign-payout", lease, payout, shutdown, round).await;
        Ok(())
    }));
    let checks = process.caller_checks()?.context(
        "the campaign service's gRPC port needs the identity service: set identity_endpoint",
    )?;
    let server =
        grpc_access::guard(checks).around(CampaignGrpc::new(Arc::clone(&campaigns)).into_server());
    let client = Arc::new(InProcessCampaigns::new(Arc::clone(&campaigns)));
    Ok(CampaignRole {
        campaigns,
        client,
        server,
    })
}

/// The campaign service in another process, at `campaign_endpoint`.
pub fn remote(process: &Process<'_>) -> anyhow::Result<Arc<dyn CampaignClient>> {
    let endpoint = &process.config.campaign_endpoint;
    let transport = loyalty_proto::transport::connect(endpoint, process.deadline())
        .map_err(|e| anyhow::anyhow!("campaign_endpoint {endpoint}: {e}"))?;
    Ok(Arc::new(GrpcCampaignClient::new(transport)))
}

/// One round of the sweep: it releases lapsed coupon holds and flash-sale claims, finishes
/// redemptions, rewards, mall orders and draw entries cut short, lapses mall orders not
/// confirmed in time, rewards birthdays and announces coupons about to lapse; each step on its own, a failed
/// one logged and tried again on the next round.
async fn sweep_round(campaigns: &Campaigns) -> bool {
    let mut ok = true;
    match campaigns.recover().await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            recovered = n,
            "coupon redemptions cut short were finished or undone"
        ),
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e.message, "recovering coupon redemptions failed; retrying")
        }
    }
    match campaigns.release_lapsed_holds().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(released = n, "coupon holds that lapsed were given back"),
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e.message, "releasing lapsed coupon holds failed; retrying")
        }
    }
    match campaigns.recover_grants().await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            recovered = n,
            "campaign rewards cut short were paid or released"
        ),
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e.message, "finishing campaign rewards cut short failed; retrying")
        }
    }
    match campaigns.sweep_birthdays().await {
        Ok(s) if s.members == 0 => {}
        Ok(s) => tracing::debug!(
            members = s.members,
            rewarded = s.rewarded,
            "birthdays swept"
        ),
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e.message, "the birthday sweep failed; retrying")
        }
    }
    match campaigns.lapse_claims().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(lapsed = n, "flash-sale claims that lapsed were given back"),
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e.message, "giving back lapsed flash-sale claims failed; retrying")
        }
    }
    match campaigns.sweep_orders().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            swept = n,
            "mall orders that lapsed or were cut short were given back"
        ),
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e.message, "sweeping the mall's orders failed; retrying")
        }
    }
    match campaigns.sweep_entries().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(voided = n, "lucky-draw entries cut short were voided"),
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e.message, "sweeping lucky-draw entries failed; retrying")
        }
    }
    match campaigns.announce_expiring().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(announced = n, "coupons about to lapse were announced"),
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e.message, "announcing lapsing coupons failed; retrying")
        }
    }
    ok
}

/// One round of payouts: campaign results counted, coupons' bonus points and draws' prizes
/// paid, and mall orders' and voided entries' points given back through the ledger (all read
/// the store's outbox); a round that fails is logged and resumed from where it stopped on
/// the next one.
async fn pay_out_round(campaigns: &Campaigns) -> bool {
    let mut ok = true;
    match campaigns.tally_results().await {
        Ok(0) => {}
        Ok(facts) => tracing::debug!(facts, "campaign results counted"),
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e.message, "counting campaign results failed; retrying")
        }
    }
    match campaigns.pay_out().await {
        Ok(paid) if paid.adjustments == 0 => {}
        Ok(paid) => tracing::debug!(
            adjustments = paid.adjustments,
            points = paid.points,
            "coupons' bonus points paid"
        ),
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e.message, "paying coupons' bonus points failed; retrying")
        }
    }
    match campaigns.pay_draws().await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(entries = n, "lucky-draw prizes paid and costs given back"),
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e.message, "paying lucky-draw prizes failed; retrying")
        }
    }
    match campaigns.refund_orders().await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(
            orders = n,
            "mall orders' points given back or value credited"
        ),
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e.message, "settling mall orders in the ledger failed; retrying")
        }
    }
    ok
}
