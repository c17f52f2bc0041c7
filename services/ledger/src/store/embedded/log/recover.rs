//! Reading the log back at start-up. A torn final frame (the write of a batch that was never
//! acknowledged, cut by a crash) is dropped; damage anywhere else stops the store with an error
//! naming the file and offset, because dropping a frame there would lose acknowledged writes.

use super::{HEADER, MAX_FRAME, PREPARING, checksum, segments};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// What recovery found: the frames to replay and where appending continues.
pub(in crate::store::embedded) struct Recovered {
    pub dir: PathBuf,
    /// Frames with an LSN above the one recovery was given, in order.
    pub frames: Vec<(u64, Vec<u8>)>,
    pub next_lsn: u64,
    /// The newest segment and the offset where its frames end.
    pub last_segment: Option<(PathBuf, u64)>,
    /// Bytes of a torn final frame that were dropped (zero when the log ended cleanly).
    pub torn_bytes: u64,
}

fn damaged(path: &Path, offset: usize, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the ledger's commit log is damaged: {what} in {} at offset {offset}; acknowledged \
             writes may be lost, so the store will not start. Restore the data directory from a \
             backup",
            path.display()
        ),
    )
}

/// Where the frames of one segment end, and the length the header at that point claims when it
/// is plausible.
struct SegmentEnd {
    end: usize,
    claimed: Option<usize>,
}

/// Reads the frames of `bytes`, the segment whose first frame is `expected`; pushes those above
/// `applied` to `frames` and advances `expected`.
fn scan(
    bytes: &[u8],
    expected: &mut u64,
    applied: u64,
    frames: &mut Vec<(u64, Vec<u8>)>,
) -> SegmentEnd {
    let mut at = 0;
    while at + HEADER <= bytes.len() {
        let header = &bytes[at..at + HEADER];
        let len = u32::from_le_bytes(header[0..4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default());
        let lsn = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
        let fits = len > 0 && len <= MAX_FRAME && at + HEADER + len <= bytes.len();
        let claimed = fits.then_some(len);
        if !fits || lsn != *expected {
            return SegmentEnd { end: at, claimed };
        }
        let payload = &bytes[at + HEADER..at + HEADER + len];
        if checksum(lsn, payload) != crc {
            return SegmentEnd { end: at, claimed };
        }
        if lsn > applied {
            frames.push((lsn, payload.to_vec()));
        }
        *expected += 1;
        at += HEADER + len;
    }
    SegmentEnd {
        end: at,
        claimed: None,
    }
}

/// The offset of a whole frame with LSN `lsn` or the one after it at or after `from`: a torn
/// final frame has none after it, so finding one means damage in the middle of the log.
fn later_frame(bytes: &[u8], from: usize, lsn: u64) -> Option<usize> {
    (from..bytes.len().saturating_sub(HEADER)).find(|&at| {
        let first = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap_or_default());
        if first != lsn && first != lsn + 1 {
            return false;
        }
        let mut expected = first;
        let mut ignored = Vec::new();
        scan(&bytes[at..], &mut expected, u64::MAX, &mut ignored).end > 0
    })
}

/// Recovers the log in `dir` (created when missing) for a store that holds the effects of
/// every frame up to `applied`.
pub(in crate::store::embedded) fn recover(dir: &Path, applied: u64) -> io::Result<Recovered> {
    std::fs::create_dir_all(dir)?;
    match std::fs::remove_file(dir.join(PREPARING)) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let found = segments(dir)?;
    let mut recovered = Recovered {
        dir: dir.to_path_buf(),
        frames: Vec::new(),
        next_lsn: applied + 1,
        last_segment: None,
        torn_bytes: 0,
    };
    let Some((first, first_path)) = found.first() else {
        return Ok(recovered);
    };
    if *first > applied + 1 {
        return Err(damaged(
            first_path,
            0,
            &format!(
                "the log starts at frame {first} but the store holds frames only up to {applied}"
            ),
        ));
    }
    let mut expected = *first;
    for (i, (lsn, path)) in found.iter().enumerate() {
        if *lsn != expected {
            return Err(damaged(
                path,
                0,
                &format!("the segment starts at frame {lsn} where frame {expected} was due"),
            ));
        }
        let bytes = std::fs::read(path)?;
        let stop = scan(&bytes, &mut expected, applied, &mut recovered.frames);
        let last = i + 1 == found.len();
        // Only the newest segment can end in a torn frame: older ones were complete and
        // synced before the next was started. A torn frame spans at most its claimed length
        // (or the longest frame when its header is unreadable); past that, only zeros.
        let torn_end = if last {
            let span = stop.claimed.unwrap_or(MAX_FRAME);
            (stop.end + HEADER + span).min(bytes.len())
        } else {
            stop.end
        };
        if let Some(extra) = bytes[torn_end..].iter().position(|b| *b != 0) {
            return Err(damaged(
                path,
                torn_end + extra,
                "data after the end of the log",
            ));
        }
        if last && let Some(at) = later_frame(&bytes[..torn_end], stop.end + 1, expected) {
            return Err(damaged(
                path,
                stop.end,
                &format!("a bad frame before a good one at {at}"),
            ));
        }
        if last {
            let torn = &bytes[stop.end..torn_end];
            if let Some(last_written) = torn.iter().rposition(|b| *b != 0) {
                let torn = &torn[..=last_written];
                // Zero it, so that it cannot be mistaken for damage after the next crash.
                let file = std::fs::OpenOptions::new().write(true).open(path)?;
                file.write_all_at(&vec![0; torn.len()], stop.end as u64)?;
                file.sync_data()?;
                recovered.torn_bytes = torn.len() as u64;
            }
            recovered.last_segment = Some((path.clone(), stop.end as u64));
        }
    }
    if expected <= applied {
        return Err(damaged(
            &found[found.len() - 1].1,
            0,
            &format!(
                "the log ends at frame {} but the store holds frames up to {applied}",
                expected - 1
            ),
        ));
    }
    recovered.next_lsn = expected;
    Ok(recovered)
}
