//! redb: one file, copy-on-write B+trees, one write transaction at a time.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use crate::{Commit, Result, Store};

type Bytes = TableDefinition<'static, &'static [u8], &'static [u8]>;
const HEADS: Bytes = TableDefinition::new("wallet_heads");
const ENTRIES: Bytes = TableDefinition::new("entries");
const IDEMPOTENCY: Bytes = TableDefinition::new("idempotency");
const CHANGES: Bytes = TableDefinition::new("change_log");

pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    pub fn open(dir: &Path) -> Result<Self> {
        let db = Database::create(dir.join("ledger.redb"))?;
        // Create the tables up front so read transactions can open them.
        let tx = db.begin_write()?;
        for table in [HEADS, ENTRIES, IDEMPOTENCY, CHANGES] {
            tx.open_table(table)?;
        }
        tx.commit()?;
        Ok(Self { db })
    }
}

impl Store for RedbStore {
    fn commit(&self, batch: &[Commit]) -> Result<()> {
        let mut tx = self.db.begin_write()?;
        // The default, but stated: commit() returns only after the data is fsynced.
        tx.set_durability(Durability::Immediate)?;
        {
            let mut heads = tx.open_table(HEADS)?;
            let mut entries = tx.open_table(ENTRIES)?;
            let mut idempotency = tx.open_table(IDEMPOTENCY)?;
            let mut changes = tx.open_table(CHANGES)?;
            for c in batch {
                heads.insert(c.head_key.as_slice(), c.head.as_slice())?;
                entries.insert(c.entry_key.as_slice(), c.entry.as_slice())?;
                idempotency.insert(c.idem_key.as_slice(), c.idem.as_slice())?;
                changes.insert(c.change_key.as_slice(), c.change.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn head_len(&self, key: &[u8]) -> Result<Option<usize>> {
        let tx = self.db.begin_read()?;
        let heads = tx.open_table(HEADS)?;
        Ok(heads.get(key)?.map(|v| v.value().len()))
    }
}
