//! The newest committed changes, kept in memory by the writer so that the event publisher can
//! take them without reading each one back from disk (a range read of the change log, then a
//! point read of every entry). The change log on disk stays the record: whatever the tail does
//! not hold, for any reason, is read from there.

use crate::store::Change;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

/// Changes in sequence order without gaps, at most `capacity` of them.
pub(super) struct ChangeTail {
    changes: Mutex<VecDeque<Change>>,
    capacity: usize,
}

impl ChangeTail {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            changes: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Change>> {
        // Pushes and takes leave the queue whole before they could panic.
        self.changes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends changes just committed, in sequence order. A change that does not follow the
    /// last one held (the writer restarted its numbering after a failed commit) starts the tail
    /// afresh, so the tail never has a gap.
    pub(super) fn push(&self, committed: impl IntoIterator<Item = Change>) {
        let mut tail = self.lock();
        for change in committed {
            if tail.back().is_some_and(|last| last.seq + 1 != change.seq) {
                tail.clear();
            }
            tail.push_back(change);
        }
        while tail.len() > self.capacity {
            tail.pop_front();
        }
    }

    /// Up to `limit` changes after `seq`, taken out of the tail, if the tail holds the change
    /// right after `seq` or is exactly caught up with it; `None` when the caller must read the
    /// log on disk. Changes up to `seq` are dropped: the one reader has them already.
    pub(super) fn take_after(&self, seq: u64, limit: usize) -> Option<Vec<Change>> {
        let mut tail = self.lock();
        let (first, last) = (tail.front()?.seq, tail.back()?.seq);
        if seq.saturating_add(1) < first || seq > last {
            return None;
        }
        let skip = usize::try_from(seq + 1 - first)
            .unwrap_or(usize::MAX)
            .min(tail.len());
        tail.drain(..skip);
        let n = limit.min(tail.len());
        Some(tail.drain(..n).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Deltas, Entry, EntryKind, WalletKey};
    use loyalty_common::Timestamp;
    use loyalty_common::ids::{EntryId, MemberId, TenantId};

    fn change(seq: u64) -> Change {
        let id = EntryId(ulid::Ulid::from_parts(seq, 0));
        Change {
            seq,
            wallet: WalletKey {
                tenant: TenantId::parse("t").unwrap(),
                member: MemberId::parse("m").unwrap(),
            },
            entry: Entry::new(id, EntryKind::Earned, Timestamp(0), Deltas::default()),
            trace: None,
        }
    }

    fn seqs(changes: Option<Vec<Change>>) -> Option<Vec<u64>> {
        changes.map(|c| c.iter().map(|c| c.seq).collect())
    }

    #[test]
    fn serves_what_follows_and_sends_everything_else_to_disk() {
        let tail = ChangeTail::new(4);
        assert_eq!(seqs(tail.take_after(0, 10)), None, "empty: read the disk");
        tail.push((3..=8).map(change));
        // Capacity 4: 5..=8 are held.
        assert_eq!(seqs(tail.take_after(2, 10)), None, "behind the tail");
        assert_eq!(seqs(tail.take_after(4, 2)), Some(vec![5, 6]));
        assert_eq!(seqs(tail.take_after(6, 10)), Some(vec![7, 8]));
        // Taken: a retry of the same read goes to disk.
        assert_eq!(seqs(tail.take_after(6, 10)), None);
        tail.push([change(9)]);
        assert_eq!(seqs(tail.take_after(8, 10)), Some(vec![9]));
        tail.push([change(10)]);
        assert_eq!(seqs(tail.take_after(10, 10)), Some(vec![]), "caught up");
        assert_eq!(seqs(tail.take_after(11, 10)), None, "ahead of the tail");
    }

    #[test]
    fn a_gap_restarts_the_tail() {
        let tail = ChangeTail::new(10);
        tail.push((1..=3).map(change));
        tail.push([change(7)]);
        assert_eq!(seqs(tail.take_after(3, 10)), None);
        assert_eq!(seqs(tail.take_after(6, 10)), Some(vec![7]));
    }
}
