//! fjall: LSM-tree with a shared write-ahead journal across keyspaces.

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::{Commit, Result, Store};

pub struct FjallStore {
    db: Database,
    heads: Keyspace,
    entries: Keyspace,
    idempotency: Keyspace,
    changes: Keyspace,
    persist: PersistMode,
}

impl FjallStore {
    pub fn open(dir: &Path, persist: PersistMode) -> Result<Self> {
        let db = Database::builder(dir).open()?;
        let ks = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default);
        Ok(Self {
            heads: ks("wallet_heads")?,
            entries: ks("entries")?,
            idempotency: ks("idempotency")?,
            changes: ks("change_log")?,
            persist,
            db,
        })
    }
}

impl Store for FjallStore {
    fn commit(&self, batch: &[Commit]) -> Result<()> {
        // One atomic journal write for the whole batch, then one fsync before commit() returns.
        let mut b = self.db.batch().durability(Some(self.persist));
        for c in batch {
            b.insert(&self.heads, c.head_key.as_slice(), c.head.as_slice());
            b.insert(&self.entries, c.entry_key.as_slice(), c.entry.as_slice());
            b.insert(&self.idempotency, c.idem_key.as_slice(), c.idem.as_slice());
            b.insert(&self.changes, c.change_key.as_slice(), c.change.as_slice());
        }
        b.commit()?;
        Ok(())
    }

    fn head_len(&self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self.heads.get(key)?.map(|v| v.len()))
    }

    fn settle(&self) -> Result<()> {
        for ks in [&self.heads, &self.entries, &self.idempotency, &self.changes] {
            ks.rotate_memtable_and_wait()?;
        }
        Ok(())
    }
}
