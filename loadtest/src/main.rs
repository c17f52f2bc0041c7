//! `loadgen`: the ledger benchmark's load generator. See `loadgen --help`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use loyalty_loadtest::{bench, echo};
use std::net::SocketAddr;
use std::process::ExitCode;

// mimalloc: allocation is a large share of the request path's CPU (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load generator for the ledger benchmark.
///
/// `loadgen bench` opens a wallet per member on a ledger.v1 server, then measures, for
/// --seconds each: earn (closed loop of Earn), mix (80% Earn, 20% Redeem + CaptureHold),
/// echo (the same loop against a no-op gRPC server it spawns, the stack's ceiling) and
/// earn-at-half (open loop at half the earn throughput, latency from each request's intended
/// start). With `--api rest --phases profile-read`, a closed loop of masked profile reads of
/// members imported beforehand (`loadtest/bench-members.sh`). Each phase prints one line on
/// stdout:
///
///   phase=earn ops=N throughput_per_s=X p50_ms=X p99_ms=X p999_ms=X errors=N rejected=N
///
/// then `ratio earn/echo=X` (and `ratio earn/pg=X` with --pg-baseline-tps). Progress and
/// diagnostics go to stderr. Only loopback targets are allowed. Exits non-zero on any failure.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the benchmark phases against a ledger.v1 server on this machine.
    Bench(Box<bench::BenchArgs>),
    /// Serve the no-op bench.v1 Echo service; prints `listening <addr>` once bound.
    EchoServer(EchoServerArgs),
}

#[derive(Debug, clap::Args)]
struct EchoServerArgs {
    /// Loopback address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Exit when stdin reaches end of file (set by `bench` so the child dies with its parent).
    #[arg(long, hide = true)]
    exit_on_stdin_eof: bool,
}

/// Transparent huge pages off for the load generator too, as memberd does: with them on, a page
/// fault may wait while the kernel zeroes or compacts a 2 MiB page, and an open loop charges such
/// a stall of the generator to the server (its send lag reached 242 ms in a run with them on).
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(err) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("loadgen: could not turn transparent huge pages off ({err}); continuing");
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    without_transparent_huge_pages();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loadgen: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Bench(args) => bench::run(*args).await,
        Command::EchoServer(args) => echo::serve(args.addr, args.exit_on_stdin_eof).await,
    }
}
