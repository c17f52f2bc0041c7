//! The ledger's own commit log: the embedded store acknowledges a write once its record is
//! durable here, and applies it to fjall afterwards, off the request path (see
//! docs/decisions/0017-ledger-commit-log.md).
//!
//! The log is a directory of segments named by the sequence number (LSN) of their first frame.
//! A frame is one batch of writes: `[payload length: u32][CRC-32 of LSN and payload: u32]
//! [LSN: u64][payload]`, little-endian, LSNs consecutive across segments. A segment is filled
//! with zeros and synced before its first frame, so appending and `fdatasync` afterwards change
//! no file size or extent map and sync only the data written; the next segment is prepared in
//! the background while the current one fills.

mod recover;
#[cfg(test)]
mod tests;

pub(super) use recover::{Recovered, recover};

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use super::crash_point::CrashPoint;

/// Bytes before a frame's payload.
const HEADER: usize = 16;
/// The largest payload of one frame; the writer's batches stay far below it.
pub(super) const MAX_FRAME: usize = 16 * 1024 * 1024;
/// The default segment size: a few seconds of the heaviest load, and several frames at most.
pub(super) const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// The file a segment is prepared in before it gets its name.
const PREPARING: &str = "next.segment";

/// The segment file of the frame with sequence number `lsn`.
fn segment_path(dir: &Path, lsn: u64) -> PathBuf {
    dir.join(format!("{lsn:020}.log"))
}

/// The first LSN of a segment, from its file name.
fn segment_lsn(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".log")?.parse().ok()
}

/// Segments in `dir`, oldest first.
fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if let Some(lsn) = segment_lsn(&path) {
            found.push((lsn, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The CRC of a frame: it covers the LSN too, so a frame copied to the wrong place fails it.
fn checksum(lsn: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&lsn.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Writes `len` zeros to a new file at `path` and syncs it, so later writes into it allocate
/// nothing.
fn zero_filled(path: &Path, len: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let zeros = vec![0u8; 1024 * 1024];
    let mut at = 0;
    while at < len {
        let n = zeros.len().min((len - at) as usize);
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    file.sync_all()?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The append side of the log, owned by the store's writer thread.
pub(super) struct CommitLog {
    dir: PathBuf,
    file: File,
    /// Where the next frame goes in `file`.
    offset: u64,
    next_lsn: u64,
    segment_bytes: u64,
    /// The next segment, being zero-filled in the background.
    preparing: Option<JoinHandle<io::Result<File>>>,
}

impl CommitLog {
    /// Continues the log after `recovered` (see [`recover`]).
    pub(super) fn continue_after(recovered: &Recovered, segment_bytes: u64) -> io::Result<Self> {
        let dir = recovered.dir.clone();
        let (file, offset) = match &recovered.last_segment {
            Some((path, end)) => (OpenOptions::new().write(true).open(path)?, *end),
            None => {
                let path = segment_path(&dir, recovered.next_lsn);
                let file = zero_filled(&dir.join(PREPARING), segment_bytes)?;
                std::fs::rename(dir.join(PREPARING), &path)?;
                sync_dir(&dir)?;
                (file, 0)
            }
        };
        let mut log = Self {
            dir,
            file,
            offset,
            next_lsn: recovered.next_lsn,
            segment_bytes,
            preparing: None,
        };
        log.prepare_next();
        Ok(log)
    }

    /// The LSN the next frame gets.
    pub(super) fn next_lsn(&self) -> u64 {
        self.next_lsn
    }

    /// Appends one frame and makes it durable; returns its LSN. After an error the log's state
    /// on disk is unknown (a failed `fdatasync` may have dropped pages), so the caller must stop
    /// writing and let a restart recover.
    pub(super) fn append(&mut self, payload: &[u8]) -> io::Result<u64> {
        if payload.len() > MAX_FRAME {
            return Err(io::Error::other(format!(
                "a commit of {} bytes exceeds the log's frame limit of {MAX_FRAME}",
                payload.len()
            )));
        }
        let size = (HEADER + payload.len()) as u64;
        if size > self.segment_bytes {
            return Err(io::Error::other(format!(
                "a commit of {size} bytes does not fit in a log segment of {} bytes",
                self.segment_bytes
            )));
        }
        if self.offset + size > self.segment_bytes {
            self.switch_segment()?;
        }
        let lsn = self.next_lsn;
        let mut frame = Vec::with_capacity(size as usize);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&checksum(lsn, payload).to_le_bytes());
        frame.extend_from_slice(&lsn.to_le_bytes());
        frame.extend_from_slice(payload);
        self.file.write_all_at(&frame, self.offset)?;
        CrashPoint::FrameWritten.reached();
        self.file.sync_data()?;
        self.offset += size;
        self.next_lsn += 1;
        Ok(lsn)
    }

    /// Moves to the prepared next segment. The current one is complete and synced: every frame
    /// was synced when appended, and its unused end is zeros.
    fn switch_segment(&mut self) -> io::Result<()> {
        let file = match self.preparing.take() {
            Some(handle) => handle
                .join()
                .map_err(|_| io::Error::other("preparing a log segment panicked"))??,
            None => zero_filled(&self.dir.join(PREPARING), self.segment_bytes)?,
        };
        CrashPoint::SegmentPrepared.reached();
        std::fs::rename(
            self.dir.join(PREPARING),
            segment_path(&self.dir, self.next_lsn),
        )?;
        CrashPoint::SegmentRenamed.reached();
        sync_dir(&self.dir)?;
        self.file = file;
        self.offset = 0;
        self.prepare_next();
        CrashPoint::SegmentSwitched.reached();
        Ok(())
    }

    fn prepare_next(&mut self) {
        let path = self.dir.join(PREPARING);
        let len = self.segment_bytes;
        self.preparing = std::thread::Builder::new()
            .name("ledger-log-prep".into())
            .spawn(move || zero_filled(&path, len))
            .ok();
    }
}

/// Deletes the segments all of whose frames have LSNs up to `applied`, once their effects are
/// durable in fjall. The newest segment always stays. Returns how many were deleted.
pub(super) fn discard_through(dir: &Path, applied: u64) -> io::Result<usize> {
    let found = segments(dir)?;
    let mut deleted = 0;
    for pair in found.windows(2) {
        let (next_first, _) = pair[1];
        // Every frame of pair[0] has an LSN below the next segment's first.
        if next_first <= applied + 1 {
            std::fs::remove_file(&pair[0].1)?;
            deleted += 1;
            if deleted == 1 {
                CrashPoint::CheckpointTrimming.reached();
            }
        }
    }
    if deleted > 0 {
        sync_dir(dir)?;
    }
    Ok(deleted)
}
