//! `memberd import`: members from an older system's CSV or JSON Lines file. Rows are read in
//! bounded memory, checked field by field, sealed on every core, and committed a batch at a
//! time together with a checkpoint, so an interrupted import resumes after its last batch
//! without duplicating anyone. Rows that cannot be imported go to the report (row, field,
//! reason; never the value, which may be personal data). A dry run checks everything,
//! duplicates included, and writes nothing.

pub mod mapping;
pub mod source;

use anyhow::Context;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_member::profile::IndexKind;
use loyalty_member::service::{Importer, Members, ProfileInput};
use loyalty_member::store::{MemberWrite, Written};
use mapping::{FieldError, Mapping};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    let importer = members.importer(&args.tenant).await?;
    let checkpoint = fingerprint(&args.file, &args.mapping)?;
    let mut summary = Summary::default();
    if args.restart {
        importer.clear_checkpoint(&checkpoint).await?;
    } else if !args.dry_run
        && let Some(saved) = importer.checkpoint(&checkpoint).await?
    {
        summary = postcard::from_bytes(&saved).context("reading the import's checkpoint")?;
        eprintln!(
            "memberd: resuming the import of {} after row {} ({} imported so far); --restart starts over",
            args.file.display(),
            summary.last_row,
            summary.imported
        );
    }
    let mut report = Report::open(&args.report_path(), summary.last_row > 0)?;
    let read = Arc::new(AtomicU64::new(0));
    let columns: Vec<String> = mapping.columns().cloned().collect();
    let rows = source::rows(
        &args.file,
        format,
        &encoding,
        mapping.delimiter,
        columns,
        Arc::clone(&read),
    )?;
    let resume_after = summary.last_row;
    let mut rows = rows.skip_while(|r| r.number <= resume_after).peekable();
    let mut dry = DryRun::default();
    let started = Instant::now();
    while rows.peek().is_some() {
        let mut batch = Vec::with_capacity(args.batch);
        let mut checked = Vec::with_capacity(args.batch);
        for row in rows.by_ref().take(args.batch) {
            summary.rows += 1;
            summary.last_row = row.number;
            let values = match row.values {
                Ok(v) => v,
                Err(reason) => {
                    summary.invalid += 1;
                    report.row(row.number, "", &reason)?;
                    continue;
                }
            };
            match mapping.to_input(|column| values.get(column).cloned()) {
                Ok(input) => checked.push((row.number, input)),
                Err(errors) => {
                    summary.invalid += 1;
                    report.errors(row.number, &errors)?;
                }
            }
        }
        for (number, prepared) in prepare_all(&importer, checked) {
            match prepared {
                Ok(write) => batch.push((number, write)),
                Err(reason) => {
                    summary.invalid += 1;
                    report.row(number, "", &reason)?;
                }
            }
        }
        if args.dry_run {
            dry.check(&importer, batch, &mut summary, &mut report)
                .await?;
        } else {
            commit(&importer, &checkpoint, batch, &mut summary, &mut report).await?;
        }
        report.flush()?;
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

/// Seals the checked rows on every core; the rows keep their order.
fn prepare_all(
    importer: &Importer<'_>,
    rows: Vec<(u64, (MemberId, ProfileInput))>,
) -> Vec<(u64, Result<MemberWrite, String>)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = rows.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<_>> = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        chunks.push(rows.by_ref().take(chunk).collect());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|(number, (member, input))| {
                            let write = importer.prepare(&member, input).map_err(|e| e.message);
                            (number, write)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

async fn commit(
    importer: &Importer<'_>,
    checkpoint: &str,
    batch: Vec<(u64, MemberWrite)>,
    summary: &mut Summary,
    report: &mut Report,
) -> anyhow::Result<()> {
    let (numbers, writes): (Vec<u64>, Vec<MemberWrite>) = batch.into_iter().unzip();
    // The checkpoint must count this batch's outcomes, known only after the checks; the
    // store checks and commits in one step, so count the optimistic case and correct it.
    let mut after = summary.clone();
    after.imported += writes.len() as u64;
    let outcomes = importer
        .commit(writes, checkpoint, postcard::to_allocvec(&after)?)
        .await?;
    let mut refused = Vec::new();
    for (number, outcome) in numbers.into_iter().zip(outcomes) {
        match outcome {
            Written::Yes => summary.imported += 1,
            Written::Taken(kind, holder) => {
                summary.duplicates += 1;
                let reason = format!("{} belongs to member {holder} already", kind.label());
                refused.push((number, kind.label(), reason));
            }
            _ => {
                summary.duplicates += 1;
                let reason = "a member with this id exists already".to_string();
                refused.push((number, "member_id", reason));
            }
        }
    }
    if !refused.is_empty() {
        // Save the corrected counts (no member rows: a small write).
        importer
            .commit(Vec::new(), checkpoint, postcard::to_allocvec(&*summary)?)
            .await?;
    }
    for (number, field, reason) in refused {
        report.row(number, field, &reason)?;
    }
    Ok(())
}

/// What a dry run remembers to find duplicates within the file: member ids, and the first
/// 16 bytes of each blind index (ample to tell a million members apart).
#[derive(Default)]
struct DryRun {
    ids: HashSet<String>,
    indexes: HashSet<(IndexKind, [u8; 16])>,
}

impl DryRun {
    async fn check(
        &mut self,
        importer: &Importer<'_>,
        batch: Vec<(u64, MemberWrite)>,
        summary: &mut Summary,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        'rows: for (number, write) in batch {
            let member = MemberId::parse(&write.member)?;
            if !self.ids.insert(write.member.clone()) || importer.exists(&member).await? {
                summary.duplicates += 1;
                report.row(number, "member_id", "a member with this id exists already")?;
                continue;
            }
            let indexes = write.profile.map(|p| p.indexes).unwrap_or_default();
            for (kind, index) in &indexes {
                let mut short = [0u8; 16];
                short.copy_from_slice(&index[..16]);
                let holder = match self.indexes.contains(&(*kind, short)) {
                    true => Some("of an earlier row".to_string()),
                    false => importer.holder(*kind, index).await?,
                };
                if let Some(holder) = holder {
                    summary.duplicates += 1;
                    let reason = format!("{} belongs to member {holder} already", kind.label());
                    report.row(number, kind.label(), &reason)?;
                    continue 'rows;
                }
            }
            for (kind, index) in &indexes {
                let mut short = [0u8; 16];
                short.copy_from_slice(&index[..16]);
                self.indexes.insert((*kind, short));
            }
            summary.imported += 1;
        }
        Ok(())
    }
}

/// The validation report: one CSV line per problem.
struct Report {
    writer: csv::Writer<std::fs::File>,
}

impl Report {
    fn open(path: &Path, append: bool) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(path)
            .with_context(|| format!("creating the report {}", path.display()))?;
        let mut writer = csv::Writer::from_writer(file);
        if !append {
            writer.write_record(["row", "field", "reason"])?;
        }
        Ok(Self { writer })
    }

    fn row(&mut self, number: u64, field: &str, reason: &str) -> anyhow::Result<()> {
        self.writer
            .write_record([number.to_string().as_str(), field, reason])?;
        Ok(())
    }

    fn errors(&mut self, number: u64, errors: &[FieldError]) -> anyhow::Result<()> {
        errors
            .iter()
            .try_for_each(|e| self.row(number, &e.field, &e.reason))
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.writer.flush()?;
        Ok(())
    }
}

/// Names an import's checkpoint: the file (its size and first MiB) and the mapping, so a
/// checkpoint is never applied to another file.
fn fingerprint(file: &Path, mapping: &Path) -> anyhow::Result<String> {
    let mut hash = Sha256::new();
    let meta = std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?;
    hash.update(meta.len().to_be_bytes());
    let mut head = Vec::new();
    std::fs::File::open(file)?
        .take(1 << 20)
        .read_to_end(&mut head)?;
    hash.update(&head);
    hash.update(std::fs::read(mapping)?);
    Ok(hex(&hash.finalize()[..16]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
