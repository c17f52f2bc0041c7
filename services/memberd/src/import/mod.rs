//! `memberd import`: members from an older system's CSV or JSON Lines file. Rows are read in
//! bounded memory, checked field by field, sealed on every core, checked for duplicates
//! (within the file and against the store), and committed a batch at a time together with a
//! checkpoint, so an interrupted import resumes after its last batch without duplicating
//! anyone. Rows that cannot be imported go to the report (row, field, reason; never the
//! value, which may be personal data). A dry run checks everything, duplicates included, and
//! writes no member.

mod filter;
pub mod mapping;
pub mod source;

use anyhow::Context;
use loyalty_common::error::ErrorCode;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_member::profile::IndexKind;
use loyalty_member::service::{Importer, Members, ProfileInput};
use loyalty_member::store::{MemberWrite, Written};
use mapping::Mapping;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Instant;

pub struct ImportArgs {
    pub tenant: TenantId,
    pub file: PathBuf,
    pub mapping: PathBuf,
    /// Overrides the mapping's encoding.
    pub encoding: Option<String>,
    pub dry_run: bool,
    /// Where the report goes (`<file>.report.csv` by default).
    pub report: Option<PathBuf>,
    /// Ignore a checkpoint and start from the first row.
    pub restart: bool,
    /// Rows per committed batch.
    pub batch: usize,
}

impl ImportArgs {
    /// Where the report goes.
    pub fn report_path(&self) -> PathBuf {
        self.report.clone().unwrap_or_else(|| {
            let mut p = self.file.clone().into_os_string();
            p.push(".report.csv");
            PathBuf::from(p)
        })
    }
}

/// Counts so far; saved with every checkpoint, so a resumed import reports the whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The number of the last row handled (0: none).
    pub last_row: u64,
    pub rows: u64,
    pub imported: u64,
    pub invalid: u64,
    pub duplicates: u64,
}

/// What the progress bar shows.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub bytes: u64,
    pub rows: u64,
}

/// What every batch saves with its members, in the same durable write.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    summary: Summary,
    /// The report's length in bytes once this batch's lines were in it. A resumed import cuts
    /// the report back to it, so the lines of a batch that never committed are not doubled.
    report_len: u64,
}

/// A line of the report: row, field, reason.
type Line = (u64, String, String);

/// Runs the import; `progress` is called after every batch.
pub async fn run(
    members: &Members,
    args: &ImportArgs,
    progress: impl Fn(Progress),
) -> anyhow::Result<Summary> {
    let mapping = Mapping::load(&args.mapping)?;
    let format = source::Format::choose(mapping.format.as_deref(), &args.file)?;
    let encoding = args
        .encoding
        .clone()
        .or(mapping.encoding.clone())
        .unwrap_or_else(|| "utf-8".into());
    let batch_size = args.batch.max(1);
    // The file is opened and its header checked before anything is written: a missing column
    // must not leave even the tenant's key behind.
    let read = Arc::new(AtomicU64::new(0));
    let columns: Vec<String> = mapping.columns().cloned().collect();
    let rows = source::rows(
        &args.file,
        format,
        &encoding,
        mapping.delimiter,
        columns,
        &mapping.tag_separator,
        Arc::clone(&read),
    )?;
    let checkpoint = fingerprint(&args.file, &args.mapping, &encoding)?;
    let importer = members.importer(&args.tenant).await?;
    let mut summary = Summary::default();
    let mut resume_report = None;
    if args.dry_run {
        // A dry run neither reads nor clears a checkpoint.
    } else if args.restart {
        importer.clear_checkpoint(&checkpoint).await?;
    } else if let Some(saved) = importer.checkpoint(&checkpoint).await? {
        let saved: Checkpoint = postcard::from_bytes(&saved)
            .context("reading the checkpoint of an interrupted import (--restart starts over)")?;
        eprintln!(
            "memberd: resuming the import of {} after row {} ({} imported so far); --restart starts over",
            args.file.display(),
            saved.summary.last_row,
            saved.summary.imported
        );
        summary = saved.summary;
        resume_report = Some(saved.report_len);
    } else {
        let others = members
            .repository()
            .settings(&args.tenant, "import_checkpoint")
            .await?;
        if !others.is_empty() {
            eprintln!(
                "memberd: note: {} interrupted import(s) of another file, or of this file before it \
                 changed, did not finish; this import starts from the first row, and members \
                 those imports wrote are reported as duplicates",
                others.len()
            );
        }
    }
    // Into a tenant without members, the store holds only what this import writes: a filter of
    // that spares the store lookups of nearly every row.
    let tenant_empty = members
        .repository()
        .profiles_page(&args.tenant, None, 1)
        .await?
        .is_empty();
    let mut written = (summary.last_row == 0 && tenant_empty).then(|| {
        let rows = std::fs::metadata(&args.file).map_or(0, |m| m.len()) / 100;
        filter::Written::with_capacity(rows * 4)
    });
    let mut report = Report::open(&args.report_path(), resume_report)?;
    let resume_after = summary.last_row;
    let mut rows = rows.skip_while(|r| r.number <= resume_after).peekable();
    // A dry run remembers the whole file to find its duplicates. An import remembers the batch
    // in flight and the current one: the store holds the batches before them.
    let mut claims = Claims::default();
    let mut in_flight: Option<InFlight<_>> = None;
    let store = tokio::runtime::Handle::current();
    let started = Instant::now();
    while rows.peek().is_some() {
        let mut delta = Summary::default();
        let mut lines: Vec<Line> = Vec::new();
        let mut checked = Vec::with_capacity(batch_size);
        for row in rows.by_ref().take(batch_size) {
            delta.rows += 1;
            delta.last_row = row.number;
            let values = match row.values {
                Ok(v) => v,
                Err(reason) => {
                    delta.invalid += 1;
                    lines.push((row.number, String::new(), reason));
                    continue;
                }
            };
            match mapping.to_input(|column| values.get(column).cloned()) {
                Ok(input) => checked.push((row.number, input)),
                Err(errors) => {
                    delta.invalid += 1;
                    lines.extend(errors.into_iter().map(|e| (row.number, e.field, e.reason)));
                }
            }
        }
        let mut batch = Vec::with_capacity(checked.len());
        for (number, prepared) in prepare_all(&importer, &store, written.as_ref(), checked)? {
            match prepared {
                Ok(prepared) => batch.push((number, prepared)),
                Err(reason) => {
                    delta.invalid += 1;
                    lines.push((number, String::new(), reason));
                }
            }
        }
        let previous = match args.dry_run {
            true => Claims::default(),
            false => std::mem::take(&mut claims),
        };
        let mut writes = Vec::with_capacity(batch.len());
        let mut numbers = Vec::with_capacity(batch.len());
        for (number, prepared) in batch {
            match claims.check(&previous, &prepared) {
                Some((field, reason)) => {
                    delta.duplicates += 1;
                    lines.push((number, field.into(), reason));
                }
                None => {
                    claims.claim(number, &prepared.write);
                    if let Some(written) = written.as_mut().filter(|_| !args.dry_run) {
                        written.insert(&prepared.write);
                    }
                    delta.imported += 1;
                    numbers.push(number);
                    writes.push(prepared.write);
                }
            }
        }
        // The batch before this one must be in before this one's lines and checkpoint are.
        if let Some(flight) = in_flight.take() {
            flight.land(&mut summary, &mut report).await?;
            progress(Progress {
                bytes: read.load(Ordering::Relaxed),
                rows: summary.rows,
            });
        }
        summary.add(&delta);
        lines.sort_by_key(|l| l.0);
        report.append(&lines)?;
        if args.dry_run {
            progress(Progress {
                bytes: read.load(Ordering::Relaxed),
                rows: summary.rows,
            });
        } else {
            let saved = Checkpoint::of(&summary, &report)?;
            in_flight = Some(start_commit(&importer, &checkpoint, numbers, writes, saved).await);
        }
    }
    if let Some(flight) = in_flight.take() {
        flight.land(&mut summary, &mut report).await?;
        progress(Progress {
            bytes: read.load(Ordering::Relaxed),
            rows: summary.rows,
        });
    }
    if !args.dry_run {
        importer.clear_checkpoint(&checkpoint).await?;
    }
    tracing::info!(elapsed = ?started.elapsed(), "import finished");
    Ok(summary)
}

impl Summary {
    fn add(&mut self, batch: &Summary) {
        self.last_row = self.last_row.max(batch.last_row);
        self.rows += batch.rows;
        self.imported += batch.imported;
        self.invalid += batch.invalid;
        self.duplicates += batch.duplicates;
    }
}

impl Checkpoint {
    fn of(summary: &Summary, report: &Report) -> anyhow::Result<Vec<u8>> {
        Ok(postcard::to_allocvec(&Checkpoint {
            summary: summary.clone(),
            report_len: report.len,
        })?)
    }
}

/// A sealed row, and what the store holds of it: whether its member id is taken, and the
/// holders of its blind indexes up to the first that is taken.
struct Prepared {
    write: MemberWrite,
    exists: bool,
    holders: Vec<Option<String>>,
}

/// Seals the checked rows and looks them up in the store, on every core; the rows keep their
/// order. A row the member service refuses gets its reason; any other failure stops the
/// import. `store` runs the store's lookups on these threads (the embedded store answers them
/// without waiting); a row that `written` says cannot clash skips them.
fn prepare_all(
    importer: &Importer<'_>,
    store: &tokio::runtime::Handle,
    written: Option<&filter::Written>,
    rows: Vec<(u64, (MemberId, ProfileInput))>,
) -> anyhow::Result<Vec<(u64, Result<Prepared, String>)>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = rows.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<_>> = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        chunks.push(rows.by_ref().take(chunk).collect());
    }
    let prepare = |member: MemberId, input| -> anyhow::Result<Result<Prepared, String>> {
        let write = match importer.prepare(&member, input) {
            Ok(write) => write,
            Err(e) if e.code == ErrorCode::InvalidArgument => return Ok(Err(e.message)),
            Err(e) => anyhow::bail!("sealing member {member}: {}", e.message),
        };
        if written.is_some_and(|w| !w.may_clash(&write)) {
            let (exists, holders) = (false, Vec::new());
            return Ok(Ok(Prepared {
                write,
                exists,
                holders,
            }));
        }
        let exists = store.block_on(importer.exists(&member))?;
        let mut holders = Vec::new();
        if !exists {
            for (kind, index) in write.profile.iter().flat_map(|p| &p.indexes) {
                let holder = store.block_on(importer.holder(*kind, index))?;
                let taken = holder.is_some();
                holders.push(holder);
                if taken {
                    break;
                }
            }
        }
        Ok(Ok(Prepared {
            write,
            exists,
            holders,
        }))
    };
    let sealed = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(|| {
                    chunk
                        .into_iter()
                        .map(|(number, (member, input))| Ok((number, prepare(member, input)?)))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        // A thread that panicked must not drop its rows silently: the panic goes on.
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    Ok(sealed.into_iter().flatten().collect())
}

/// A batch committing (rows already checked for duplicates) with its checkpoint. The store
/// writes it on a thread of its own while the next batch is read, sealed and checked.
struct InFlight<'a, F> {
    importer: &'a Importer<'a>,
    checkpoint: &'a str,
    numbers: Vec<u64>,
    commit: Commit<F>,
}

enum Commit<F> {
    Running(std::pin::Pin<Box<F>>),
    Done(ServiceResult<Vec<Written>>),
}

/// Starts committing a batch: polls the commit once, which hands the write to the store's
/// thread.
async fn start_commit<'a>(
    importer: &'a Importer<'a>,
    checkpoint: &'a str,
    numbers: Vec<u64>,
    writes: Vec<MemberWrite>,
    saved: Vec<u8>,
) -> InFlight<'a, impl Future<Output = ServiceResult<Vec<Written>>> + Send + 'a> {
    let mut running = Box::pin(importer.commit(writes, checkpoint, saved));
    let commit = std::future::poll_fn(|cx| {
        Poll::Ready(match running.as_mut().poll(cx) {
            Poll::Ready(done) => Some(done),
            Poll::Pending => None,
        })
    })
    .await;
    InFlight {
        importer,
        checkpoint,
        numbers,
        commit: match commit {
            Some(done) => Commit::Done(done),
            None => Commit::Running(running),
        },
    }
}

impl<F: Future<Output = ServiceResult<Vec<Written>>>> InFlight<'_, F> {
    /// Waits for the commit. The store checks every write again; should it refuse one the
    /// check passed (something else wrote to the store meanwhile), the counts and the report
    /// are corrected and saved at once.
    async fn land(self, summary: &mut Summary, report: &mut Report) -> anyhow::Result<()> {
        let outcomes = match self.commit {
            Commit::Running(running) => running.await?,
            Commit::Done(done) => done?,
        };
        let mut refused = Vec::new();
        for (number, outcome) in self.numbers.into_iter().zip(outcomes) {
            let (field, reason) = match outcome {
                Written::Yes => continue,
                Written::Taken(kind, holder) => (kind.label(), taken(kind, &holder)),
                _ => ("member_id", EXISTS.to_string()),
            };
            summary.imported -= 1;
            summary.duplicates += 1;
            refused.push((number, field.to_string(), reason));
        }
        if !refused.is_empty() {
            report.append(&refused)?;
            let saved = Checkpoint::of(summary, report)?;
            self.importer
                .commit(Vec::new(), self.checkpoint, saved)
                .await?;
        }
        Ok(())
    }
}

const EXISTS: &str = "a member with this id exists already";

fn taken(kind: IndexKind, holder: &str) -> String {
    format!("{} belongs to member {holder} already", kind.label())
}

/// What earlier rows of the file claimed beyond what the store holds: member ids and blind
/// indexes (their first 16 bytes, ample to tell a million members apart), each with its row.
#[derive(Default)]
struct Claims {
    ids: HashMap<String, u64>,
    indexes: HashMap<(IndexKind, [u8; 16]), u64>,
}

fn short(index: &[u8; 32]) -> [u8; 16] {
    let mut s = [0u8; 16];
    s.copy_from_slice(&index[..16]);
    s
}

impl Claims {
    /// Why `write` cannot be imported (field, reason), checked in the order the store checks.
    /// Why a row cannot be imported (field, reason), checked in the order the store checks:
    /// its member id, then its blind indexes, each against earlier rows first. `previous`
    /// holds the claims of the batch still committing, if any.
    fn check(&self, previous: &Claims, row: &Prepared) -> Option<(&'static str, String)> {
        let member = &row.write.member;
        if let Some(earlier) = self.ids.get(member).or_else(|| previous.ids.get(member)) {
            let reason = format!("row {earlier} has this member id already");
            return Some(("member_id", reason));
        }
        if row.exists {
            return Some(("member_id", EXISTS.into()));
        }
        let indexes = row.write.profile.iter().flat_map(|p| &p.indexes);
        for (n, (kind, index)) in indexes.enumerate() {
            let key = (*kind, short(index));
            let claimed = self
                .indexes
                .get(&key)
                .or_else(|| previous.indexes.get(&key));
            if let Some(earlier) = claimed {
                let reason = format!(
                    "{} belongs to the member of row {earlier} already",
                    kind.label()
                );
                return Some((kind.label(), reason));
            }
            if let Some(Some(holder)) = row.holders.get(n) {
                return Some((kind.label(), taken(*kind, holder)));
            }
        }
        None
    }

    fn claim(&mut self, row: u64, write: &MemberWrite) {
        self.ids.insert(write.member.clone(), row);
        for (kind, index) in write.profile.iter().flat_map(|p| &p.indexes) {
            self.indexes.insert((*kind, short(index)), row);
        }
    }
}

/// The validation report: one CSV line per problem, written a batch at a time and synced
/// before the batch commits.
struct Report {
    file: std::fs::File,
    /// Bytes in the file.
    len: u64,
}

impl Report {
    /// A new report, or, resuming, the report cut back to what the checkpoint covers.
    fn open(path: &Path, resume_at: Option<u64>) -> anyhow::Result<Self> {
        let context = || format!("opening the report {}", path.display());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(resume_at.is_none())
            .open(path)
            .with_context(context)?;
        let found = file.metadata().with_context(context)?.len();
        let len = match resume_at {
            Some(len) if len > 0 && found >= len => {
                file.set_len(len).with_context(context)?;
                len
            }
            Some(len) if len > 0 => {
                eprintln!(
                    "memberd: warning: the report {} is shorter than when the import was \
                     interrupted; lines of the rows before the resumption are missing from it",
                    path.display()
                );
                found
            }
            _ => {
                file.set_len(0).with_context(context)?;
                0
            }
        };
        file.seek(std::io::SeekFrom::Start(len))
            .with_context(context)?;
        let mut report = Self { file, len };
        if len == 0 {
            report.write(|w| w.write_record(["row", "field", "reason"]))?;
        }
        Ok(report)
    }

    fn append(&mut self, lines: &[Line]) -> anyhow::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.write(|w| {
            lines.iter().try_for_each(|(number, field, reason)| {
                w.write_record([number.to_string().as_str(), field, reason])
            })
        })
    }

    fn write(
        &mut self,
        f: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> csv::Result<()>,
    ) -> anyhow::Result<()> {
        let mut w = csv::Writer::from_writer(Vec::new());
        f(&mut w)?;
        let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        self.file.write_all(&bytes).context("writing the report")?;
        self.file.sync_data().context("writing the report")?;
        self.len += bytes.len() as u64;
        Ok(())
    }
}

/// Names an import's checkpoint: the whole file's content, the mapping and the encoding, so a
/// checkpoint is never applied to another file, nor to this file read another way.
fn fingerprint(file: &Path, mapping: &Path, encoding: &str) -> anyhow::Result<String> {
    let mut hash = Sha256::new();
    let mut input =
        std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input
            .read(&mut buf)
            .with_context(|| format!("reading {}", file.display()))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    hash.update(b"\0mapping\0");
    hash.update(std::fs::read(mapping)?);
    hash.update(b"\0encoding\0");
    hash.update(encoding.to_ascii_lowercase().as_bytes());
    Ok(hex(&hash.finalize()[..16]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
