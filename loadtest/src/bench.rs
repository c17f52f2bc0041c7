//! `loadgen bench`: setup, the measured phases in order, the summary and the JSON report.

use crate::driver::{closed_loop, open_loop};
use crate::echo::EchoChild;
use crate::rest::RestConn;
use crate::setup::open_wallets;
use crate::stats::PhaseReport;
use crate::target::{Credential, Link, connect, loopback_uri};
use crate::workload::{Kind, RunContext, Worker};
use anyhow::{Context, Result, bail, ensure};
use clap::ValueEnum;
use loyalty_common::ids::TenantId;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Uri;

/// Open-loop workers per `--clients`: headroom so a latency spike queues requests on the
/// schedule (and is measured) instead of running out of senders.
const OPEN_LOOP_WORKERS_PER_CLIENT: usize = 2;

/// The measured phases. They always run in this order, whatever order `--phases` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Closed loop of Earn requests.
    Earn,
    /// Closed loop: 80% Earn, 20% Redeem + CaptureHold.
    Mix,
    /// Closed loop of Echo calls against a spawned no-op server (the gRPC stack's ceiling).
    Echo,
    /// Open loop of Earn at half the earn phase's throughput (or --open-loop-rate).
    EarnAtHalf,
    /// Closed loop of masked profile reads (REST only) of members imported beforehand with
    /// `loadtest/gen-members.py` (ids M00000000 up to --members); opens no wallet.
    ProfileRead,
    /// Open loop of the same profile reads at half the profile-read phase's throughput (or
    /// --open-loop-rate): the latency of a read under a steady load, queueing included.
    ProfileReadAtHalf,
    /// Closed loop of flash-sale claims (gRPC only) on the one sale --sale names, each a
    /// fresh claim id for a random imported member (M00000000 up to --members): the worst
    /// contention, every claim on one sale. SOLD_OUT answers count as rejections.
    Claim,
    /// Closed loop of the till's checkout: ValidateCart then Redeem of the coupon of
    /// --template that setup issued to a random imported member, a fresh redemption id per
    /// call (over REST: the cart's evaluation, then the redemption).
    Redeem,
    /// Open loop of the same checkouts at --open-loop-rate (or half the redeem phase's
    /// throughput): the latency at a rate the baseline sustains too.
    RedeemAtRate,
    /// Closed loop of points-mall redemption orders (gRPC only): one of --items for a random
    /// imported member, placed under a fresh order id then confirmed. Setup gives every
    /// member points first. SOLD_OUT answers count as rejections.
    Order,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Earn => "earn",
            Phase::Mix => "mix",
            Phase::Echo => "echo",
            Phase::EarnAtHalf => "earn-at-half",
            Phase::ProfileRead => "profile-read",
            Phase::ProfileReadAtHalf => "profile-read-at-half",
            Phase::Claim => "claim",
            Phase::Redeem => "redeem",
            Phase::RedeemAtRate => "redeem-at-rate",
            Phase::Order => "order",
        }
    }

    /// Whether the phase needs the wallets that setup opens.
    fn needs_wallets(self) -> bool {
        matches!(self, Phase::Earn | Phase::Mix | Phase::EarnAtHalf)
    }
}

/// Which API the load goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Api {
    /// The ledger's gRPC port (`ledger.v1`).
    Grpc,
    /// memberd's REST gateway (`/v1`, JSON over HTTP/1.1): earn, earn-at-half,
    /// profile-read and its open loop, and the redeem phases.
    Rest,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// URL of the server to load: the ledger's gRPC port (ledger.v1), or with `--api rest`
    /// memberd's HTTP port. Only loopback hosts are accepted: 127.0.0.1, localhost or [::1].
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub target: String,
    /// The API the load goes through.
    #[arg(long, value_enum, default_value = "grpc")]
    pub api: Api,
    /// Concurrent clients in the closed-loop phases; each sends its next request as soon as
    /// the previous one returns.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub clients: u32,
    /// HTTP/2 connections (tonic channels) the clients share, round robin. One connection is
    /// handled on one core, so use several.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub connections: u32,
    /// Length of each measured phase, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Members (wallets) opened during setup; every request picks one at random. For
    /// profile-read: the imported members to pick from (M00000000 up to this many).
    #[arg(long, default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub members: u32,
    /// Tenant the run writes to. Default: bench-<random>, a fresh tenant for every run.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Phases to run, comma separated. They run in the order earn, mix, echo, earn-at-half,
    /// profile-read whatever the order given. Setup (opening wallets) runs when earn, mix or
    /// earn-at-half is selected. profile-read (REST only) is not in the default.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "earn,mix,echo,earn-at-half"
    )]
    pub phases: Vec<Phase>,
    /// The flash sale the claim phase claims from (created beforehand, e.g. by
    /// `loadtest/bench-campaign.sh`).
    #[arg(long)]
    pub sale: Option<String>,
    /// The coupon template the redeem phase redeems: setup issues one coupon of it to each
    /// imported member (keyed, so a second run finds the same coupons).
    #[arg(long)]
    pub template: Option<String>,
    /// The mall items the order phase orders, comma separated (saved beforehand, e.g. by
    /// `loadtest/bench-mall.sh`); each order picks one at random.
    #[arg(long, value_delimiter = ',')]
    pub items: Vec<String>,
    /// The order phase places and confirms each order in one call (`PlaceMallOrder` with
    /// `confirm`) instead of two.
    #[arg(long)]
    pub at_once: bool,
    /// Rate of the open loops (earn-at-half, profile-read-at-half, redeem-at-rate), requests
    /// per second.
    /// Default: half the throughput its closed loop (earn, profile-read) measured in this run,
    /// so it is required when that phase is not selected.
    #[arg(long)]
    pub open_loop_rate: Option<f64>,
    /// Throughput of the PostgreSQL baseline, in transactions per second; prints
    /// `ratio earn/pg=...` in the summary.
    #[arg(long)]
    pub pg_baseline_tps: Option<f64>,
    /// Also write the run's settings and every figure to this JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Timeout of each request, in milliseconds; a request that takes longer is an error.
    #[arg(long, default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub request_timeout_ms: u64,
    /// The wallets of --tenant were opened by an earlier run of loadgen with the same
    /// --members: skip setup, so that what the target does during the phases is the phases'
    /// alone (the CQL benchmark reads the cluster's counters between two runs).
    #[arg(long, requires = "tenant")]
    pub wallets_exist: bool,
    /// Most OpenWallet calls in flight during setup.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub setup_in_flight: u32,
    /// Give up when setup takes longer than this many seconds.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub setup_timeout_secs: u64,
    /// Errors tolerated per phase. Above it the run still prints and writes every figure, then
    /// exits non-zero. A phase where nothing succeeds aborts the run at once.
    #[arg(long, default_value_t = 0)]
    pub max_errors: u64,
    /// An access token or API key for memberd's gRPC port (it checks every caller); the
    /// platform administrator's token reaches any tenant.
    #[arg(long, env = "LOADGEN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Consume the run's ledger events from NATS JetStream at this URL while the phases run, and
    /// report their lag from commit to arrival (memberd must run with `events.bus = "nats"`).
    #[arg(long)]
    pub watch_events: Option<String>,
}

#[derive(Debug, Serialize)]
struct RunReport<'a> {
    run_id: &'a str,
    target: String,
    tenant: &'a str,
    clients: u32,
    connections: u32,
    seconds: u64,
    members: u32,
    phases: &'a [PhaseReport],
    ratio_earn_over_echo: Option<f64>,
    pg_baseline_tps: Option<f64>,
    ratio_earn_over_pg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<crate::events::LagReport>,
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let uri = loopback_uri(&args.target)?;
    let mut phases = args.phases.clone();
    phases.sort();
    phases.dedup();
    ensure!(!phases.is_empty(), "--phases selects no phase");
    for (flag, value) in [
        ("--open-loop-rate", args.open_loop_rate),
        ("--pg-baseline-tps", args.pg_baseline_tps),
    ] {
        if let Some(v) = value {
            ensure!(
                v.is_finite() && v > 0.0,
                "{flag} must be a positive number, got {v}"
            );
        }
    }
    for (open, closed) in [
        (Phase::EarnAtHalf, Phase::Earn),
        (Phase::ProfileReadAtHalf, Phase::ProfileRead),
        (Phase::RedeemAtRate, Phase::Redeem),
    ] {
        if phases.contains(&open) && !phases.contains(&closed) && args.open_loop_rate.is_none() {
            bail!(
                "{} needs the {} phase (to measure its rate) or --open-loop-rate",
                open.name(),
                closed.name()
            );
        }
    }
    if args.api == Api::Rest
        && let Some(p) = phases
            .iter()
            .find(|p| matches!(p, Phase::Mix | Phase::Echo))
    {
        bail!(
            "phase {} runs over gRPC only; with --api rest use --phases earn,earn-at-half",
            p.name()
        );
    }
    if args.api == Api::Grpc
        && let Some(p) = phases
            .iter()
            .find(|p| matches!(p, Phase::ProfileRead | Phase::ProfileReadAtHalf))
    {
        bail!("phase {} runs over REST only; use --api rest", p.name());
    }
    if phases.contains(&Phase::Claim) {
        ensure!(args.api == Api::Grpc, "phase claim runs over gRPC only");
        ensure!(args.sale.is_some(), "phase claim needs --sale");
    }
    if phases.contains(&Phase::Redeem) || phases.contains(&Phase::RedeemAtRate) {
        ensure!(args.template.is_some(), "the redeem phases need --template");
    }
    if phases.contains(&Phase::Order) {
        ensure!(args.api == Api::Grpc, "phase order runs over gRPC only");
        ensure!(!args.items.is_empty(), "phase order needs --items");
    }
    let run_id = format!("{:08x}", rand::random::<u32>());
    let tenant = args
        .tenant
        .clone()
        .unwrap_or_else(|| format!("bench-{run_id}"));
    TenantId::parse(tenant.clone()).context("--tenant")?;
    let ctx = Arc::new(RunContext {
        run_id: run_id.clone(),
        tenant,
        members: args.members,
        sale: args.sale.clone().unwrap_or_default(),
        codes: std::sync::OnceLock::new(),
        items: args.items.clone(),
        orders_at_once: args.at_once,
    });
    let timeout = Duration::from_millis(args.request_timeout_ms);
    let names: Vec<&str> = phases.iter().map(|p| p.name()).collect();
    let connections = match args.api {
        Api::Grpc => format!("{} HTTP/2 connections", args.connections),
        Api::Rest => "pooled HTTP/1.1 connections (REST)".to_string(),
    };
    eprintln!(
        "loadgen: run {run_id}: target {uri}, tenant {}, {} clients over {connections}, \
         {} s per phase, phases {}",
        ctx.tenant,
        args.clients,
        args.seconds,
        names.join(",")
    );

    let credential = Credential::bearer(args.token.as_deref())?;
    let ledger =
        if phases.iter().any(|p| *p != Phase::Echo) {
            let channels = match args.api {
                Api::Grpc => connect(&uri, args.connections as usize, timeout, &credential)
                    .await?
                    .into_iter()
                    .map(Link::Grpc)
                    .collect(),
                Api::Rest => vec![Link::Rest(RestConn::new(
                    &args.target,
                    timeout,
                    args.token.as_deref(),
                )?)],
            };
            if phases.iter().any(|p| p.needs_wallets()) && !args.wallets_exist {
                let limit = Duration::from_secs(args.setup_timeout_secs);
                open_wallets(&ctx, &channels, args.setup_in_flight as usize, limit).await?;
            }
            if let Some(template) = args.template.as_deref().filter(|_| {
                phases.contains(&Phase::Redeem) || phases.contains(&Phase::RedeemAtRate)
            }) {
                let limit = Duration::from_secs(args.setup_timeout_secs);
                let codes = crate::coupons::issue(
                    &ctx,
                    &channels,
                    template,
                    args.setup_in_flight as usize,
                    limit,
                )
                .await?;
                ctx.codes.set(codes).ok();
            }
            if phases.contains(&Phase::Order) && !args.wallets_exist {
                let limit = Duration::from_secs(args.setup_timeout_secs);
                crate::mall::fund(&ctx, &channels, args.setup_in_flight as usize, limit).await?;
            }
            channels
        } else {
            Vec::new()
        };

    let watcher = match &args.watch_events {
        Some(url) => Some(crate::events::Watcher::start(url, &ctx.tenant).await?),
        None => None,
    };
    let mut reports = Vec::new();
    for phase in phases {
        let report = match phase {
            Phase::Earn
            | Phase::Mix
            | Phase::ProfileRead
            | Phase::Claim
            | Phase::Redeem
            | Phase::Order => {
                let kind = match phase {
                    Phase::Earn => Kind::Earn,
                    Phase::Mix => Kind::Mix,
                    Phase::Claim => Kind::Claim,
                    Phase::Redeem => Kind::Redeem,
                    Phase::Order => Kind::Order,
                    _ => Kind::ProfileRead,
                };
                closed_phase(&args, &ctx, phase, kind, &ledger).await?
            }
            Phase::Echo => echo_phase(&args, &ctx, timeout, &credential).await?,
            Phase::EarnAtHalf | Phase::ProfileReadAtHalf | Phase::RedeemAtRate => {
                let (closed, kind) = match phase {
                    Phase::EarnAtHalf => (Phase::Earn, Kind::Earn),
                    Phase::RedeemAtRate => (Phase::Redeem, Kind::Redeem),
                    _ => (Phase::ProfileRead, Kind::ProfileRead),
                };
                let rate = match (args.open_loop_rate, throughput(&reports, closed)) {
                    (Some(rate), _) => rate,
                    (None, Some(peak)) if peak > 0.0 => peak / 2.0,
                    _ => bail!("{}: no {} throughput to halve", phase.name(), closed.name()),
                };
                open_phase(&args, &ctx, phase, kind, rate, &ledger, timeout).await?
            }
        };
        println!("{report}");
        check(&report)?;
        reports.push(report);
    }

    let events = match watcher {
        Some(w) => {
            let report = w.finish(u64::MAX, Duration::from_secs(3)).await;
            println!("{report}");
            Some(report)
        }
        None => None,
    };
    let earn = throughput(&reports, Phase::Earn);
    let ratio_echo = earn
        .zip(throughput(&reports, Phase::Echo))
        .map(|(e, x)| e / x);
    let ratio_pg = earn.zip(args.pg_baseline_tps).map(|(e, pg)| e / pg);
    if let Some(r) = ratio_echo {
        println!("ratio earn/echo={r:.3}");
    }
    if let Some(r) = ratio_pg {
        println!("ratio earn/pg={r:.3}");
    } else if args.pg_baseline_tps.is_some() {
        eprintln!("loadgen: no earn phase in this run, so no earn/pg ratio");
    }
    if let Some(path) = &args.json {
        let report = RunReport {
            run_id: &run_id,
            target: uri.to_string(),
            tenant: &ctx.tenant,
            clients: args.clients,
            connections: args.connections,
            seconds: args.seconds,
            members: args.members,
            phases: &reports,
            ratio_earn_over_echo: ratio_echo,
            pg_baseline_tps: args.pg_baseline_tps,
            ratio_earn_over_pg: ratio_pg,
            events,
        };
        let text = serde_json::to_string_pretty(&report).context("encoding the JSON report")?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing the JSON report to {}", path.display()))?;
    }
    let over: Vec<String> = reports
        .iter()
        .filter(|r| r.errors > args.max_errors)
        .map(|r| format!("{} ({} errors)", r.phase, r.errors))
        .collect();
    ensure!(
        over.is_empty(),
        "more than --max-errors={} errors in phase {}",
        args.max_errors,
        over.join(", ")
    );
    Ok(())
}

fn throughput(reports: &[PhaseReport], phase: Phase) -> Option<f64> {
    reports
        .iter()
        .find(|r| r.phase == phase.name())
        .map(|r| r.throughput_per_s)
}

/// Prints the error breakdown, and fails the run when nothing in the phase succeeded.
fn check(report: &PhaseReport) -> Result<()> {
    if report.errors == 0 {
        return Ok(());
    }
    let kinds: Vec<String> = report
        .error_kinds
        .iter()
        .map(|(kind, n)| format!("{kind}={n}"))
        .collect();
    eprintln!(
        "phase {}: errors by kind: {}",
        report.phase,
        kinds.join(" ")
    );
    if report.ops == 0 {
        bail!(
            "phase {}: every request failed ({}); is the server up at the target?",
            report.phase,
            kinds.join(" ")
        );
    }
    Ok(())
}

fn workers(
    ctx: &Arc<RunContext>,
    phase: Phase,
    kind: Kind,
    channels: &[Link],
    count: usize,
) -> Result<Vec<Worker>> {
    ensure!(
        !channels.is_empty(),
        "phase {}: no connections",
        phase.name()
    );
    Ok((0..count)
        .map(|i| {
            let channel = channels[i % channels.len()].clone();
            Worker::new(ctx.clone(), phase.name(), i, kind, channel)
        })
        .collect())
}

async fn closed_phase(
    args: &BenchArgs,
    ctx: &Arc<RunContext>,
    phase: Phase,
    kind: Kind,
    channels: &[Link],
) -> Result<PhaseReport> {
    eprintln!(
        "phase {}: closed loop, {} clients, {} s",
        phase.name(),
        args.clients,
        args.seconds
    );
    let workers = workers(ctx, phase, kind, channels, args.clients as usize)?;
    let (stats, elapsed) = closed_loop(workers, Duration::from_secs(args.seconds)).await?;
    Ok(stats.report(phase.name(), elapsed, None))
}

async fn echo_phase(
    args: &BenchArgs,
    ctx: &Arc<RunContext>,
    timeout: Duration,
    credential: &Credential,
) -> Result<PhaseReport> {
    let child = EchoChild::spawn().await?;
    eprintln!("phase echo: echo-server child listening on {}", child.addr);
    let uri: Uri = format!("http://{}", child.addr)
        .parse()
        .context("building the echo server's URL")?;
    // The echo server checks no one, but its calls carry the same header as the ledger's, so
    // the ceiling includes the cost of sending it.
    let channels: Vec<Link> = connect(&uri, args.connections as usize, timeout, credential)
        .await?
        .into_iter()
        .map(Link::Grpc)
        .collect();
    let report = closed_phase(args, ctx, Phase::Echo, Kind::Echo, &channels).await;
    drop(channels);
    child.stop().await?;
    report
}

async fn open_phase(
    args: &BenchArgs,
    ctx: &Arc<RunContext>,
    phase: Phase,
    kind: Kind,
    rate: f64,
    channels: &[Link],
    timeout: Duration,
) -> Result<PhaseReport> {
    let count = args.clients as usize * OPEN_LOOP_WORKERS_PER_CLIENT;
    eprintln!(
        "phase {}: open loop at {rate:.1} requests/s, up to {count} in flight, {} s",
        phase.name(),
        args.seconds
    );
    let workers = workers(ctx, phase, kind, channels, count)?;
    let (stats, elapsed) =
        open_loop(workers, Duration::from_secs(args.seconds), rate, timeout).await?;
    Ok(stats.report(phase.name(), elapsed, Some(rate)))
}
