//! Named moments in the commit log's life where a test can have the process killed, as
//! `kill -9` would, but at exactly that moment rather than wherever a signal from outside
//! happens to land: half-way through a checkpoint, between the steps of a segment switch,
//! with a frame written but not yet synced.
//!
//! Only builds with the `crash-points` feature have them (the crash tests' build of `memberd`
//! does; release builds do not, and there every point compiles to nothing). The environment
//! variable `LOYALTY_LEDGER_CRASH_AT` names the point, optionally with the hit to die at:
//! `segment-renamed` dies at the first hit, `frame-written@500` at the 500th.

/// Where the process may be made to die.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CrashPoint {
    /// fjall's memtables hold applied frames, not yet synced by a checkpoint.
    CheckpointStarting,
    /// fjall is synced; no segment is deleted yet.
    CheckpointSynced,
    /// The first of the segments a checkpoint releases is deleted, the rest are not, and the
    /// directory is not synced.
    CheckpointTrimming,
    /// The next segment is zero-filled and synced under its preparing name.
    SegmentPrepared,
    /// The next segment has its name; the directory is not synced and no frame is in it.
    SegmentRenamed,
    /// The switch is complete and durable; the new segment holds no frame yet.
    SegmentSwitched,
    /// A frame is written to the segment but not synced, so never acknowledged.
    FrameWritten,
}

impl CrashPoint {
    #[cfg(feature = "crash-points")]
    fn name(self) -> &'static str {
        match self {
            Self::CheckpointStarting => "checkpoint-starting",
            Self::CheckpointSynced => "checkpoint-synced",
            Self::CheckpointTrimming => "checkpoint-trimming",
            Self::SegmentPrepared => "segment-prepared",
            Self::SegmentRenamed => "segment-renamed",
            Self::SegmentSwitched => "segment-switched",
            Self::FrameWritten => "frame-written",
        }
    }

    /// Kills this process with SIGKILL if this is the point and hit the environment names.
    #[cfg(feature = "crash-points")]
    pub(super) fn reached(self) {
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};
        static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
        static HITS: AtomicU64 = AtomicU64::new(0);
        let target = TARGET.get_or_init(|| {
            let spec = std::env::var("LOYALTY_LEDGER_CRASH_AT").ok()?;
            let (name, nth) = match spec.split_once('@') {
                Some((name, nth)) => (name.to_string(), nth.parse().ok()?),
                None => (spec, 1),
            };
            Some((name, nth))
        });
        let Some((name, nth)) = target else {
            return;
        };
        if name == self.name() && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
            eprintln!("memberd: crash point {name} reached; killing the process");
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::KILL,
            );
        }
    }

    #[cfg(not(feature = "crash-points"))]
    #[inline(always)]
    pub(super) fn reached(self) {}
}
