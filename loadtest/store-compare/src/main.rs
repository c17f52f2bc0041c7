//! Measures durable write throughput, group-commit throughput, point-read latency and
//! on-disk size of embedded stores under the points ledger's write shape.

mod fjall_store;
mod redb_store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use crossbeam_channel::{Sender, bounded, unbounded};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One logical ledger commit: the four rows written together and made durable together.
pub struct Commit {
    pub head_key: [u8; 12],  // tenant u32 | member u64
    pub entry_key: [u8; 20], // tenant u32 | member u64 | entry id u64
    pub idem_key: [u8; 20],  // tenant u32 | 16-byte idempotency key
    pub change_key: [u8; 8], // global sequence u64, assigned by the writer
    pub head: Vec<u8>,       // ~200 B wallet head
    pub entry: Vec<u8>,      // ~250 B entry row
    pub idem: Vec<u8>,       // ~120 B idempotency row
    pub change: Vec<u8>,     // ~250 B change-log record
}

pub trait Store: Send + Sync {
    /// Writes every commit in `batch` atomically; returns only once the batch is fsynced.
    fn commit(&self, batch: &[Commit]) -> Result<()>;
    /// Point read of a wallet head; returns the value length to keep the copy out of the timing.
    fn head_len(&self, key: &[u8]) -> Result<Option<usize>>;
    /// Moves buffered data into the engine's long-term structure (LSM: flush memtables).
    fn settle(&self) -> Result<()> {
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Engine {
    Redb,
    Fjall,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FjallSync {
    /// fsync (PersistMode::SyncAll)
    All,
    /// fdatasync (PersistMode::SyncData), what redb uses
    Data,
}

#[derive(Parser, Debug)]
#[command(about = "Compare embedded stores on the points-ledger write shape")]
struct Args {
    /// Duration of each timed measurement, in seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent producers in the group-commit measurement.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Parent directory for the temporary stores (must be on the disk being measured; not tmpfs).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Engines to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "redb,fjall")]
    engines: Vec<Engine>,
    /// Number of distinct members (wallets).
    #[arg(long, default_value_t = 100_000)]
    members: u64,
    /// Most commits the group-commit writer puts in one transaction.
    #[arg(long, default_value_t = 256)]
    max_batch: usize,
    /// Sync call fjall uses on commit.
    #[arg(long, value_enum, default_value = "all")]
    fjall_sync: FjallSync,
}

const TENANTS: u64 = 16;

fn head_key(member: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&((member % TENANTS) as u32).to_be_bytes());
    k[4..].copy_from_slice(&member.to_be_bytes());
    k
}

fn payload(rng: &mut SmallRng, len: usize) -> Vec<u8> {
    // Random bytes: incompressible, so sizes are a worst case for compressing engines.
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

fn new_commit(rng: &mut SmallRng, member: u64, seq: u64) -> Commit {
    let head_key = head_key(member);
    let mut entry_key = [0u8; 20];
    entry_key[..12].copy_from_slice(&head_key);
    entry_key[12..].copy_from_slice(&rng.next_u64().to_be_bytes());
    let mut idem_key = [0u8; 20];
    idem_key[..4].copy_from_slice(&head_key[..4]);
    rng.fill_bytes(&mut idem_key[4..]);
    Commit {
        head_key,
        entry_key,
        idem_key,
        change_key: seq.to_be_bytes(),
        head: payload(rng, 200),
        entry: payload(rng, 250),
        idem: payload(rng, 120),
        change: payload(rng, 250),
    }
}

fn open(engine: Engine, dir: &Path, args: &Args) -> Result<Arc<dyn Store>> {
    Ok(match engine {
        Engine::Redb => Arc::new(redb_store::RedbStore::open(dir)?),
        Engine::Fjall => {
            let mode = match args.fjall_sync {
                FjallSync::All => fjall::PersistMode::SyncAll,
                FjallSync::Data => fjall::PersistMode::SyncData,
            };
            Arc::new(fjall_store::FjallStore::open(dir, mode)?)
        }
    })
}

fn histogram() -> Histogram<u64> {
    // Nanoseconds, 1 ns .. 100 s, 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

fn record(h: &mut Histogram<u64>, since: Instant) {
    h.saturating_record(since.elapsed().as_nanos() as u64);
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// (a) One commit per transaction, one fsync each, from a single caller.
fn run_single(
    store: &dyn Store,
    args: &Args,
    seq: &mut u64,
) -> Result<(u64, Duration, Histogram<u64>)> {
    let mut rng = SmallRng::seed_from_u64(1);
    let mut lat = histogram();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut n = 0;
    while Instant::now() < deadline {
        *seq += 1;
        let member = rng.random_range(0..args.members);
        let c = new_commit(&mut rng, member, *seq);
        let t = Instant::now();
        store.commit(std::slice::from_ref(&c))?;
        record(&mut lat, t);
        n += 1;
    }
    Ok((n, start.elapsed(), lat))
}

type Request = (Commit, Sender<()>);

/// (b) Producers send commits to one writer, which drains up to `max_batch` queued commits into
/// one transaction and one fsync, then acknowledges each. Latency is send-to-ack per commit.
fn run_group(
    store: &dyn Store,
    args: &Args,
    seq: &mut u64,
) -> Result<(u64, u64, Duration, Histogram<u64>)> {
    let (tx, rx) = unbounded::<Request>();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    thread::scope(|s| {
        let producers: Vec<_> = (0..args.writers)
            .map(|i| {
                let tx = tx.clone();
                s.spawn(move || {
                    let mut rng = SmallRng::seed_from_u64(100 + i as u64);
                    let (ack_tx, ack_rx) = bounded(1);
                    let mut lat = histogram();
                    while Instant::now() < deadline {
                        let member = rng.random_range(0..args.members);
                        let c = new_commit(&mut rng, member, 0);
                        let t = Instant::now();
                        if tx.send((c, ack_tx.clone())).is_err() || ack_rx.recv().is_err() {
                            break; // writer failed
                        }
                        record(&mut lat, t);
                    }
                    lat
                })
            })
            .collect();
        drop(tx);

        // The single writer runs on this thread until every producer has hung up.
        let (mut commits, mut txns) = (0u64, 0u64);
        let mut batch = Vec::with_capacity(args.max_batch);
        let mut acks = Vec::with_capacity(args.max_batch);
        let mut result = Ok(());
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some((mut c, ack)) = next {
                *seq += 1;
                c.change_key = seq.to_be_bytes();
                batch.push(c);
                acks.push(ack);
                next = if batch.len() < args.max_batch {
                    rx.try_recv().ok()
                } else {
                    None
                };
            }
            if let Err(e) = store.commit(&batch) {
                result = Err(e);
                break;
            }
            for ack in acks.drain(..) {
                let _ = ack.send(());
            }
            commits += batch.len() as u64;
            txns += 1;
            batch.clear();
        }
        drop(acks); // unblocks producers if the writer failed
        drop(rx);
        let mut lat = histogram();
        for p in producers {
            lat.add(p.join().expect("producer panicked"))?;
        }
        result?;
        Ok((commits, txns, start.elapsed(), lat))
    })
}

/// Writes one commit for every member, in transactions of 1,000 commits.
fn load_wallets(store: &dyn Store, members: u64) -> Result<()> {
    let mut rng = SmallRng::seed_from_u64(7);
    let mut batch = Vec::with_capacity(1000);
    for m in 0..members {
        batch.push(new_commit(&mut rng, m, m + 1));
        if batch.len() == 1000 || m + 1 == members {
            store.commit(&batch)?;
            batch.clear();
        }
    }
    Ok(())
}

/// (c) Random point reads of wallet heads from one thread.
fn run_reads(store: &dyn Store, args: &Args) -> Result<(u64, Histogram<u64>)> {
    let mut rng = SmallRng::seed_from_u64(3);
    let mut lat = histogram();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut n = 0;
    while Instant::now() < deadline {
        let key = head_key(rng.random_range(0..args.members));
        let t = Instant::now();
        let found = store.head_len(&key)?;
        record(&mut lat, t);
        assert_eq!(found, Some(200), "wallet head missing");
        n += 1;
    }
    Ok((n, lat))
}

/// (d) Bytes allocated on disk under `dir` (like `du`); call after the store is closed.
fn disk_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            disk_bytes(&entry.path())?
        } else {
            meta.blocks() * 512
        };
    }
    Ok(total)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn measure(engine: Engine, args: &Args) -> Result<()> {
    let name = format!("{engine:?}").to_lowercase();
    let tmp = || {
        tempfile::Builder::new()
            .prefix("store-compare-")
            .tempdir_in(&args.dir)
    };

    // (a) and (b) on one store, then its size once closed.
    let dir = tmp()?;
    let mut seq = 0;
    let store = open(engine, dir.path(), args)?;
    let (n, elapsed, lat) = run_single(&*store, args, &mut seq)?;
    println!(
        "store={name} mode=single commits={n} commits_per_s={:.0} p50_us={:.0} p99_us={:.0}",
        n as f64 / elapsed.as_secs_f64(),
        us(&lat, 0.5),
        us(&lat, 0.99),
    );
    let (n, txns, elapsed, lat) = run_group(&*store, args, &mut seq)?;
    println!(
        "store={name} mode=group writers={} commits={n} commits_per_s={:.0} txns_per_s={:.0} avg_batch={:.1} p50_us={:.0} p99_us={:.0}",
        args.writers,
        n as f64 / elapsed.as_secs_f64(),
        txns as f64 / elapsed.as_secs_f64(),
        n as f64 / txns.max(1) as f64,
        us(&lat, 0.5),
        us(&lat, 0.99),
    );
    drop(store);
    let bytes = disk_bytes(dir.path())?;
    println!(
        "store={name} mode=size dataset=writes commits={seq} disk_mib={:.1} bytes_per_commit={:.0}",
        mib(bytes),
        bytes as f64 / seq as f64,
    );
    drop(dir);

    // (c) reads on a fresh store holding exactly one commit per member, settled and reopened
    // first so reads come from the on-disk structure rather than a write buffer.
    let dir = tmp()?;
    let store = open(engine, dir.path(), args)?;
    load_wallets(&*store, args.members)?;
    store.settle()?;
    drop(store);
    let t = Instant::now();
    let store = open(engine, dir.path(), args)?;
    let open_ms = t.elapsed().as_secs_f64() * 1000.0;
    let (n, lat) = run_reads(&*store, args)?;
    println!(
        "store={name} mode=read wallets={} reads={n} reads_per_s={:.0} p50_us={:.2} p99_us={:.2} reopen_ms={open_ms:.0}",
        args.members,
        n as f64 / args.seconds as f64,
        us(&lat, 0.5),
        us(&lat, 0.99),
    );
    drop(store);
    let bytes = disk_bytes(dir.path())?;
    println!(
        "store={name} mode=size dataset=wallets commits={} disk_mib={:.1} bytes_per_commit={:.0}",
        args.members,
        mib(bytes),
        bytes as f64 / args.members as f64,
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    for &engine in &args.engines {
        measure(engine, &args)?;
    }
    Ok(())
}
