//! `memberd`: runs the platform. See `memberd --help`.

use clap::Parser;
use memberd::config::{MemberdConfig, Target};
use std::path::{Path, PathBuf};

// mimalloc: allocation is a large share of the request path's CPU (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The membership and loyalty platform.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = "Runs the membership and loyalty platform. With no flags, every \
service runs in this process on the embedded store in ./data. Settings come from defaults, then \
--config, then MEMBERD_* environment variables (nested keys joined by __), then these flags."
)]
struct Cli {
    /// A TOML configuration file.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// Which services to run.
    #[arg(long, value_enum, global = true)]
    target: Option<Target>,
    /// Where the embedded store keeps its files.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Run the services (the default).
    Serve,
    /// Print the REST API's OpenAPI document.
    Openapi,
    /// Imports members from a CSV or JSON Lines file (run while memberd is stopped: the
    /// store is opened directly). Resumes after an interruption; see docs/import.md.
    Import(ImportCli),
    /// Exports a tenant's members to CSV, personal data masked unless --unmasked (run while
    /// memberd is stopped: the store is opened directly).
    Export {
        /// The tenant whose members to export.
        #[arg(long)]
        tenant: String,
        /// The CSV file to write.
        #[arg(long)]
        out: PathBuf,
        /// Personal data in the clear; recorded in the tenant's audit log first.
        #[arg(long)]
        unmasked: bool,
    },
    /// The audit log (run while memberd is stopped: the store is opened directly).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Coupon codes in bulk (run while memberd is stopped: the store is opened directly).
    Coupons {
        #[command(subcommand)]
        command: CouponsCommand,
    },
    /// Applies the CQL migrations the keyspaces on ScyllaDB lack (`[scylla]` in the
    /// configuration); safe to run again, and while memberd runs.
    Migrate,
    /// The tenants' homes of two regions (decision 0019; the control keyspace on ScyllaDB).
    Region {
        #[command(subcommand)]
        command: RegionCommand,
    },
    /// Exits with 0 when the memberd at `http_addr` is ready (`/readyz` answers 200), else 1:
    /// a container health check that needs no shell.
    Health {
        /// Ask this URL instead.
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(clap::Args)]
struct ImportCli {
    /// The file: CSV with a header row, or JSON Lines.
    file: PathBuf,
    /// The tenant the members join.
    #[arg(long)]
    tenant: String,
    /// The mapping file (TOML): which column fills which field.
    #[arg(long)]
    mapping: PathBuf,
    /// The file's encoding: utf-8 or gbk (overrides the mapping's).
    #[arg(long)]
    encoding: Option<String>,
    /// Check every row, duplicates included, and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Where the report of rejected rows goes [default: <FILE>.report.csv].
    #[arg(long)]
    report: Option<PathBuf>,
    /// Ignore the checkpoint of an interrupted import and start from the first row.
    #[arg(long)]
    restart: bool,
    /// Rows per committed batch.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch: u32,
}

#[derive(clap::Subcommand)]
enum CouponsCommand {
    /// Generates a batch of bearer codes into a CSV file for printing; run again with the
    /// same batch and count, it finds the codes it made and adds the rest.
    Generate {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        template: String,
        /// The batch's id (1 to 64 of letters, digits, `- _ .`).
        #[arg(long)]
        batch: String,
        /// 1 to 1,000,000.
        #[arg(long)]
        count: usize,
        /// Up to 8 characters of the code alphabet, put before every code.
        #[arg(long, default_value = "")]
        prefix: String,
        /// The CSV file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Imports codes printed elsewhere (a CSV file with a `code` column, or codes in its
    /// first column) as bearer coupons of a template.
    Import {
        file: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        template: String,
        #[arg(long)]
        batch: String,
    },
}

#[derive(clap::Subcommand)]
enum RegionCommand {
    /// Every tenant's home, and the homes' epoch.
    Status,
    /// Homes a tenant that has no home yet.
    Place { tenant: String, region: String },
    /// Moves every tenant of a region whose lease has lapsed (it is down or cut off) to
    /// another; refused while the region still renews its lease.
    Failover {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
    /// Moves tenants to a region in two steps (written nowhere for 5 s between), as a
    /// failback does.
    Move {
        #[arg(long)]
        to: String,
        /// The region was failed away from, and its datacenter has been rebuilt since.
        #[arg(long)]
        rebuilt: bool,
        #[arg(required = true)]
        tenants: Vec<String>,
    },
}

#[derive(clap::Subcommand)]
enum AuditCommand {
    /// Recomputes every tenant's hash chain and names the first record that was altered,
    /// deleted or reordered. Exits with 1 if any chain is broken.
    Verify,
}

/// Transparent huge pages off for this process, as Redis and MongoDB advise: where the kernel
/// uses them for every mapping, each first touch of memory the allocator takes back from the
/// kernel zeroes a whole 2 MiB page, which cost a tenth of the earn path's CPU and most of its
/// tail (docs/benchmarks.md, "The ledger's commit log"). Best effort: on failure nothing changes.
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(err) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("memberd: could not turn transparent huge pages off ({err}); continuing");
    }
}

fn main() -> std::process::ExitCode {
    without_transparent_huge_pages();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("memberd: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config: MemberdConfig = loyalty_common::config::load(cli.config.as_deref())?;
    if let Some(target) = cli.target {
        config.target = target;
    }
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&loyalty_gateway::openapi())?
            );
            Ok(())
        }
        Command::Serve => serve(config),
        Command::Import(args) => import(config, args),
        Command::Export {
            tenant,
            out,
            unmasked,
        } => export(config, &tenant, &out, unmasked),
        Command::Coupons { command } => coupons(config, command),
        Command::Health { url } => {
            let url =
                url.unwrap_or_else(|| memberd::health_check::readiness_url(&config.http_addr));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(memberd::health_check::check(&url))?;
            println!("ready: {url}");
            Ok(())
        }
        Command::Region { command } => region(config, command),
        Command::Migrate => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(memberd::migrate::run(&config.scylla))
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let runtime = tokio::runtime::Runtime::new()?;
            let intact = runtime.block_on(memberd::audit::verify(&config))?;
            if !intact {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

fn region(config: MemberdConfig, command: RegionCommand) -> anyhow::Result<()> {
    use memberd::region as r;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let control = r::control(&config).await?;
        match command {
            RegionCommand::Status => print!("{}", r::status(&control).await?),
            RegionCommand::Place { tenant, region } => {
                r::place(&control, &tenant, &r::region(&region)?).await?
            }
            RegionCommand::Failover { from, to } => {
                r::failover(&control, &r::region(&from)?, &r::region(&to)?).await?
            }
            RegionCommand::Move {
                to,
                rebuilt,
                tenants,
            } => r::move_home(&control, &tenants, &r::region(&to)?, rebuilt).await?,
        }
        anyhow::Ok(())
    })
}

fn coupons(config: MemberdConfig, command: CouponsCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let started = std::time::Instant::now();
    match command {
        CouponsCommand::Generate {
            tenant,
            template,
            batch,
            count,
            prefix,
            out,
        } => {
            let bar = indicatif::ProgressBar::new(count as u64).with_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} codes (eta {eta})",
                )?,
            );
            let args = memberd::coupons::Generate {
                tenant: &tenant,
                template: &template,
                batch: &batch,
                prefix: &prefix,
                count,
                out: &out,
            };
            let issued = runtime.block_on(memberd::coupons::generate(&config, &args, |n| {
                bar.set_position(n)
            }))?;
            bar.finish_and_clear();
            println!(
                "{count} codes in {} ({} new, {} made before), in {:.1}s",
                out.display(),
                issued.added,
                issued.already,
                started.elapsed().as_secs_f64()
            );
        }
        CouponsCommand::Import {
            file,
            tenant,
            template,
            batch,
        } => {
            let issued = runtime.block_on(memberd::coupons::import(
                &config, &tenant, &template, &batch, &file,
            ))?;
            println!(
                "imported {}, {} imported before, {} held by another batch{}",
                issued.added,
                issued.already,
                issued.taken.len(),
                match issued.taken.first() {
                    Some(code) => format!(" (the first: {code})"),
                    None => String::new(),
                }
            );
        }
    }
    Ok(())
}

fn import(config: MemberdConfig, cli: ImportCli) -> anyhow::Result<()> {
    use memberd::import::{ImportArgs, Progress};
    let args = ImportArgs {
        tenant: loyalty_common::ids::TenantId::parse(&cli.tenant)
            .map_err(|e| anyhow::anyhow!("--tenant: {}", e.message))?,
        file: cli.file,
        mapping: cli.mapping,
        encoding: cli.encoding,
        dry_run: cli.dry_run,
        report: cli.report,
        restart: cli.restart,
        batch: cli.batch as usize,
    };
    let size = std::fs::metadata(&args.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?
        .len();
    let bar =
        indicatif::ProgressBar::new(size).with_style(indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} (eta {eta})",
        )?);
    let runtime = tokio::runtime::Runtime::new()?;
    let started = std::time::Instant::now();
    let summary = runtime.block_on(async {
        let members = memberd::members::open(&config).await?;
        memberd::import::run(&members, &args, |p: Progress| {
            bar.set_position(p.bytes);
            let rate = p.rows as f64 / started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!("{} rows, {rate:.0} rows/s", p.rows));
        })
        .await
    })?;
    bar.finish_and_clear();
    let verb = if args.dry_run {
        "would import"
    } else {
        "imported"
    };
    println!(
        "{} rows read, {verb} {}, {} invalid, {} duplicates, in {:.1}s; report: {}",
        summary.rows,
        summary.imported,
        summary.invalid,
        summary.duplicates,
        started.elapsed().as_secs_f64(),
        args.report_path().display()
    );
    Ok(())
}

fn export(config: MemberdConfig, tenant: &str, out: &Path, unmasked: bool) -> anyhow::Result<()> {
    let tenant = loyalty_common::ids::TenantId::parse(tenant)
        .map_err(|e| anyhow::anyhow!("--tenant: {}", e.message))?;
    let bar = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")?,
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let written = runtime.block_on(async {
        let members = memberd::members::open(&config).await?;
        memberd::export::run(&config, &members, &tenant, out, unmasked, |n| {
            bar.set_message(format!("{n} members"));
        })
        .await
    })?;
    bar.finish_and_clear();
    let how = if unmasked {
        "unmasked (audited)"
    } else {
        "masked"
    };
    println!(
        "exported {written} members of {tenant} to {}, {how}",
        out.display()
    );
    Ok(())
}

fn serve(config: MemberdConfig) -> anyhow::Result<()> {
    // One service per process: its traces are named after it (`memberd-ledger`), unless
    // telemetry.service_name says otherwise.
    let telemetry = match config.target {
        Target::All => config.telemetry.clone(),
        target => config.telemetry.clone().named_for(target.name()),
    };
    let _telemetry =
        loyalty_telemetry::init(&telemetry).map_err(|e| anyhow::anyhow!("telemetry: {e}"))?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let running = memberd::start(config).await?;
        eprintln!("memberd: http listening on {}", running.http_addr);
        if let Some(grpc) = running.grpc_addr {
            eprintln!("memberd: grpc listening on {grpc}");
        }
        let stop = running.shutdown_handle();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stop.send(true);
        });
        running.wait().await
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
