//! The embedded adapter of [`MemberRepository`]: fjall keyspaces under `<data_dir>/member`,
//! rows in postcard. Writes run one at a time on a blocking thread; each batch is synced
//! before it is acknowledged.

use super::{LoggedEvent, MemberRepository, MemberWrite, SettingWrite, Versioned, Written};
use crate::facts::MemberFacts;
use crate::orders::Order;
use crate::profile::{IndexKind, StoredProfile};
use crate::vault::StoredTenantKey;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::store_metrics::timed;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Memtable size per keyspace: small enough that inserts stay fast (a bulk import spends
/// most of its time in memtable inserts at fjall's default of 64 MiB) and memory low.
const MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;
/// The journal is flushed into tables before it grows past this, which bounds memory too.
const MAX_JOURNAL_BYTES: u64 = 128 * 1024 * 1024;
/// Background threads: enough that a flush never waits behind a long compaction, which
/// would make fjall halt writes (as in the ledger's store).
const FLUSH_AND_COMPACTION_THREADS: usize = 4;
/// fjall's own default block cache.
pub const DEFAULT_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// Cheap to clone: clones share one database.
#[derive(Clone)]
pub struct EmbeddedMemberStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: fjall::Database,
    profiles: fjall::Keyspace,
    facts: fjall::Keyspace,
    indexes: fjall::Keyspace,
    /// tenant, birthday index, member → (): the members born on a month and day.
    birthdays: fjall::Keyspace,
    /// tenant, order id → order.
    orders: fjall::Keyspace,
    /// tenant, member, time, order id → () : a member's history in time order.
    history: fjall::Keyspace,
    changes: fjall::Keyspace,
    positions: fjall::Keyspace,
    keys: fjall::Keyspace,
    settings: fjall::Keyspace,
    /// tenant, segment, generation, member → ().
    segment_members: fjall::Keyspace,
    /// The sequence number of the newest event in `changes`; moved under `writing` only.
    last_seq: AtomicU64,
    writing: Mutex<()>,
}

fn storage(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::unavailable(format!("member store: {e}"))
}

fn encode<T: Serialize>(value: &T) -> ServiceResult<Vec<u8>> {
    postcard::to_allocvec(value).map_err(ServiceError::internal)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> ServiceResult<T> {
    postcard::from_bytes(bytes).map_err(ServiceError::internal)
}

fn key(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&0u8)
}

fn member_key(tenant: &str, member: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), member.as_bytes()])
}

fn index_key(tenant: &str, kind: IndexKind, index: &[u8; 32]) -> Vec<u8> {
    key(&[tenant.as_bytes(), kind.label().as_bytes(), index])
}

/// The keys of the members holding a birthday index: tenant, index, each followed by NUL (the
/// index is 32 bytes, so the prefix is unambiguous; the end of the range is the same prefix
/// ending in 1).
fn birthday_prefix(tenant: &str, birthday: &[u8; 32]) -> Vec<u8> {
    let mut k = key(&[tenant.as_bytes(), birthday]);
    k.push(0);
    k
}

fn birthday_key(tenant: &str, birthday: &[u8; 32], member: &str) -> Vec<u8> {
    [&birthday_prefix(tenant, birthday), member.as_bytes()].concat()
}

fn history_key(tenant: &str, order: &Order) -> Vec<u8> {
    let cursor = history_cursor(order);
    key(&[
        tenant.as_bytes(),
        order.member.as_bytes(),
        cursor.as_bytes(),
    ])
}

/// The keys of one generation of a segment's members: tenant, segment, generation, each
/// followed by NUL (so the end of the range is the same prefix ending in 1).
fn segment_prefix(tenant: &str, segment: &str, generation: u64) -> Vec<u8> {
    let mut k = key(&[
        tenant.as_bytes(),
        segment.as_bytes(),
        &generation.to_be_bytes(),
    ]);
    k.push(0);
    k
}

/// A position in a member's history: the time in hex (sorts as it reads) and the order id.
pub fn history_cursor(order: &Order) -> String {
    format!("{:016x}{}", order.at.0.max(0), order.order_id)
}

impl EmbeddedMemberStore {
    /// The store at `dir`, with fjall's default block cache.
    pub fn open(dir: &Path) -> ServiceResult<Self> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// The store at `dir`, with a block cache of `cache_bytes` for data blocks. The index and
    /// filter blocks of every table stay in memory (a few tens of MiB for a million members):
    /// a point read then touches the disk, or the page cache, for its data block at most,
    /// where fjall by default keeps only those of the newest levels. The pinning is recorded
    /// when a keyspace is created; a store created before keeps fjall's default.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> ServiceResult<Self> {
        let db = fjall::Database::builder(dir)
            .worker_threads(FLUSH_AND_COMPACTION_THREADS)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .cache_size(cache_bytes)
            .open()
            .map_err(|e| {
                ServiceError::unavailable(format!(
                    "cannot open the member store at {} ({e}); is another memberd using it?",
                    dir.display()
                ))
            })?;
        let ks = |name: &str| {
            db.keyspace(name, || {
                fjall::KeyspaceCreateOptions::default()
                    .max_memtable_size(MEMTABLE_BYTES)
                    .index_block_pinning_policy(fjall::config::PinningPolicy::all(true))
                    .filter_block_pinning_policy(fjall::config::PinningPolicy::all(true))
            })
            .map_err(storage)
        };
        let changes = ks("changes")?;
        let last_seq = match changes.last_key_value() {
            Some(guard) => seq_of(&guard.key().map_err(storage)?)?,
            None => 0,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                profiles: ks("profiles")?,
                facts: ks("facts")?,
                indexes: ks("indexes")?,
                birthdays: ks("birthdays")?,
                orders: ks("orders")?,
                history: ks("history")?,
                positions: ks("positions")?,
                keys: ks("tenant_keys")?,
                settings: ks("settings")?,
                segment_members: ks("segment_members")?,
                changes,
                last_seq: AtomicU64::new(last_seq),
                writing: Mutex::new(()),
                db,
            }),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> ServiceResult<T> + Send + 'static,
    ) -> ServiceResult<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(ServiceError::internal)?
    }

    async fn write_locked<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> ServiceResult<T> + Send + 'static,
    ) -> ServiceResult<T> {
        self.blocking(move |inner| {
            let _guard = inner.writing.lock().unwrap_or_else(|p| p.into_inner());
            f(inner)
        })
        .await
    }
}

/// Appends `batch` to the journal (synced: the store's batches are), timed.
fn commit(batch: fjall::OwnedWriteBatch) -> ServiceResult<()> {
    timed("member", "journal", "write", || {
        batch.commit().map_err(storage)
    })
}

fn seq_of(key: &[u8]) -> ServiceResult<u64> {
    Ok(u64::from_be_bytes(key.try_into().map_err(|_| {
        ServiceError::internal("bad member change key")
    })?))
}

/// What the writes earlier in a batch did, so later ones are checked against them too.
#[derive(Default)]
struct Overlay {
    profile_versions: HashMap<Vec<u8>, u64>,
    facts_versions: HashMap<Vec<u8>, u64>,
    /// Index key → its holder after the batch (None: released).
    indexes: HashMap<Vec<u8>, Option<String>>,
    orders: BTreeSet<Vec<u8>>,
}

impl Inner {
    fn get<T: DeserializeOwned>(ks: &fjall::Keyspace, key: &[u8]) -> ServiceResult<Option<T>> {
        timed("member", ks.name(), "get", || ks.get(key).map_err(storage))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Up to `limit` rows of `tenant` in `ks` after `after` (keys: tenant, NUL, name).
    fn page<T: DeserializeOwned>(
        ks: &fjall::Keyspace,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<T>> {
        let start = match after {
            // The smallest key above `after`'s own.
            Some(after) => [member_key(tenant, after), vec![0]].concat(),
            None => [tenant.as_bytes(), &[0]].concat(),
        };
        let end = [tenant.as_bytes(), &[1]].concat();
        ks.range(start..end)
            .take(limit)
            .map(|guard| decode(&guard.value().map_err(storage)?))
            .collect()
    }

    fn keyspaces(&self) -> [&fjall::Keyspace; 11] {
        [
            &self.profiles,
            &self.facts,
            &self.indexes,
            &self.birthdays,
            &self.orders,
            &self.history,
            &self.changes,
            &self.positions,
            &self.keys,
            &self.settings,
            &self.segment_members,
        ]
    }

    fn batch(&self) -> fjall::OwnedWriteBatch {
        self.db
            .batch()
            .durability(Some(fjall::PersistMode::SyncAll))
    }

    fn stored_version(
        &self,
        ks: &fjall::Keyspace,
        seen: &HashMap<Vec<u8>, u64>,
        row: &[u8],
        version_of: impl Fn(&[u8]) -> ServiceResult<u64>,
    ) -> ServiceResult<u64> {
        if let Some(v) = seen.get(row) {
            return Ok(*v);
        }
        match ks.get(row).map_err(storage)? {
            Some(bytes) => version_of(&bytes),
            None => Ok(0),
        }
    }

    /// Checks `w` against the store and the batch so far; None if it may be written.
    fn refusal(&self, w: &MemberWrite, overlay: &Overlay) -> ServiceResult<Option<Written>> {
        let row = member_key(&w.tenant, &w.member);
        if let Some(p) = &w.profile {
            let stored =
                self.stored_version(&self.profiles, &overlay.profile_versions, &row, |b| {
                    Ok(decode::<StoredProfile>(b)?.version)
                })?;
            if stored + 1 != p.version {
                return Ok(Some(Written::Stale));
            }
            for (kind, index) in &p.indexes {
                let ik = index_key(&w.tenant, *kind, index);
                let holder = match overlay.indexes.get(&ik) {
                    Some(h) => h.clone(),
                    None => Self::get::<String>(&self.indexes, &ik)?,
                };
                if let Some(holder) = holder.filter(|h| *h != w.member) {
                    return Ok(Some(Written::Taken(*kind, holder)));
                }
            }
        }
        // A new member (profile version 1, absent) has no facts row either: the two are
        // only ever written together, so the lookup is skipped (a bulk import's hot path).
        let new_member = w.profile.as_ref().is_some_and(|p| p.version == 1);
        if let Some(f) = w.facts.as_ref().filter(|f| !(new_member && f.version == 1)) {
            let stored = self.stored_version(&self.facts, &overlay.facts_versions, &row, |b| {
                Ok(decode::<Versioned<MemberFacts>>(b)?.version)
            })?;
            if stored + 1 != f.version {
                return Ok(Some(Written::Stale));
            }
        }
        if let Some(order) = &w.order {
            let ok = key(&[w.tenant.as_bytes(), order.order_id.as_bytes()]);
            if overlay.orders.contains(&ok) {
                return Ok(Some(Written::OrderExists(Box::new(order.clone()))));
            }
            if let Some(existing) = Self::get::<Order>(&self.orders, &ok)? {
                return Ok(Some(Written::OrderExists(Box::new(existing))));
            }
        }
        Ok(None)
    }

    /// Records `w` in `overlay` as [`Self::stage`] would, without events.
    fn stage_overlay(
        &self,
        w: &MemberWrite,
        scratch: &mut fjall::OwnedWriteBatch,
        overlay: &mut Overlay,
    ) -> ServiceResult<()> {
        let without_events = MemberWrite {
            events: Vec::new(),
            ..w.clone()
        };
        self.stage(&without_events, scratch, overlay)
    }

    /// Adds `w` to `batch` and records it in `overlay`.
    fn stage(
        &self,
        w: &MemberWrite,
        batch: &mut fjall::OwnedWriteBatch,
        overlay: &mut Overlay,
    ) -> ServiceResult<()> {
        let tenant = w.tenant.as_str();
        let row = member_key(tenant, &w.member);
        for (kind, index) in &w.released {
            let ik = index_key(tenant, *kind, index);
            batch.remove(&self.indexes, ik.clone());
            overlay.indexes.insert(ik, None);
        }
        // Many members share a birthday: its rows are not claimed, just kept in step with
        // the profile, removed before the profile's own is put back.
        if let Some(birthday) = &w.released_birthday {
            batch.remove(&self.birthdays, birthday_key(tenant, birthday, &w.member));
        }
        if let Some(p) = &w.profile {
            for (kind, index) in &p.indexes {
                let ik = index_key(tenant, *kind, index);
                batch.insert(&self.indexes, ik.clone(), encode(&w.member)?);
                overlay.indexes.insert(ik, Some(w.member.clone()));
            }
            if let Some(birthday) = &p.birthday {
                batch.insert(
                    &self.birthdays,
                    birthday_key(tenant, birthday, &w.member),
                    [],
                );
            }
            batch.insert(&self.profiles, row.clone(), encode(p)?);
            overlay.profile_versions.insert(row.clone(), p.version);
        }
        if let Some(f) = &w.facts {
            batch.insert(&self.facts, row.clone(), encode(f)?);
            overlay.facts_versions.insert(row, f.version);
        }
        if let Some(order) = &w.order {
            let ok = key(&[tenant.as_bytes(), order.order_id.as_bytes()]);
            batch.insert(&self.orders, ok.clone(), encode(order)?);
            batch.insert(&self.history, history_key(tenant, order), []);
            overlay.orders.insert(ok);
        }
        if let Some((from, order_ids)) = &w.orders_from {
            for order_id in order_ids {
                let ok = key(&[tenant.as_bytes(), order_id.as_bytes()]);
                let Some(mut order) = Self::get::<Order>(&self.orders, &ok)? else {
                    continue;
                };
                if order.member != *from {
                    continue;
                }
                batch.remove(&self.history, history_key(tenant, &order));
                order.member = w.member.clone();
                batch.insert(&self.history, history_key(tenant, &order), []);
                batch.insert(&self.orders, ok, encode(&order)?);
            }
        }
        for event in &w.events {
            let seq = self.last_seq.load(Ordering::Relaxed) + 1;
            let logged = LoggedEvent {
                seq,
                event: event.clone(),
                trace: None,
            };
            batch.insert(&self.changes, seq.to_be_bytes(), logged.record()?);
            self.last_seq.store(seq, Ordering::Relaxed);
        }
        Ok(())
    }

    fn write_many(
        &self,
        writes: &[MemberWrite],
        setting: Option<SettingWrite>,
        all_or_nothing: bool,
    ) -> ServiceResult<Vec<Written>> {
        if all_or_nothing {
            let mut overlay = Overlay::default();
            let mut scratch = self.batch();
            for w in writes {
                if let Some(refused) = self.refusal(w, &overlay)? {
                    return Ok(vec![refused]);
                }
                // Staged into a batch that is dropped: only the overlay is wanted, so that
                // later writes are checked against earlier ones.
                self.stage_overlay(w, &mut scratch, &mut overlay)?;
            }
        }
        let first_seq = self.last_seq.load(Ordering::Relaxed);
        let mut batch = self.batch();
        let mut overlay = Overlay::default();
        let mut outcomes = Vec::with_capacity(writes.len());
        let staged = (|| {
            for w in writes {
                match self.refusal(w, &overlay)? {
                    Some(refused) => outcomes.push(refused),
                    None => {
                        self.stage(w, &mut batch, &mut overlay)?;
                        outcomes.push(Written::Yes);
                    }
                }
            }
            if let Some(s) = setting {
                let row = key(&[s.tenant.as_bytes(), s.kind.as_bytes(), s.name.as_bytes()]);
                batch.insert(&self.settings, row, s.value);
            }
            commit(batch)
        })();
        if let Err(e) = staged {
            // Nothing was written: the sequence numbers handed out are free again.
            self.last_seq.store(first_seq, Ordering::Relaxed);
            return Err(e);
        }
        Ok(outcomes)
    }
}

#[async_trait]
impl MemberRepository for EmbeddedMemberStore {
    async fn profile(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<Option<StoredProfile>> {
        let tenant = tenant.as_str();
        let member = member.as_str();
        Inner::get(&self.inner.profiles, &member_key(tenant, member))
    }

    async fn facts(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<Option<Versioned<MemberFacts>>> {
        let tenant = tenant.as_str();
        let member = member.as_str();
        Inner::get(&self.inner.facts, &member_key(tenant, member))
    }

    async fn write(&self, write: MemberWrite) -> ServiceResult<Written> {
        let mut outcomes = self.write_many(vec![write], None).await?;
        outcomes
            .pop()
            .ok_or_else(|| ServiceError::internal("a write without an outcome"))
    }

    async fn write_many(
        &self,
        writes: Vec<MemberWrite>,
        setting: Option<SettingWrite>,
    ) -> ServiceResult<Vec<Written>> {
        self.write_locked(move |inner| inner.write_many(&writes, setting, false))
            .await
    }

    async fn write_all(
        &self,
        writes: Vec<MemberWrite>,
        setting: Option<SettingWrite>,
    ) -> ServiceResult<Written> {
        let outcomes = self
            .write_locked(move |inner| inner.write_many(&writes, setting, true))
            .await?;
        Ok(outcomes
            .into_iter()
            .find(|w| *w != Written::Yes)
            .unwrap_or(Written::Yes))
    }

    async fn member_by_index(
        &self,
        tenant: &TenantId,
        kind: IndexKind,
        index: &[u8; 32],
    ) -> ServiceResult<Option<String>> {
        let tenant = tenant.as_str();
        Inner::get(&self.inner.indexes, &index_key(tenant, kind, index))
    }

    async fn birthday_members(
        &self,
        tenant: &TenantId,
        birthday: &[u8; 32],
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<String>> {
        let prefix = birthday_prefix(tenant.as_str(), birthday);
        ids_after(&self.inner.birthdays, &prefix, after, limit)
    }

    async fn profiles_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<StoredProfile>> {
        let tenant = tenant.as_str();
        let (tenant, after) = (tenant.to_string(), after.map(str::to_string));
        self.blocking(move |inner| Inner::page(&inner.profiles, &tenant, after.as_deref(), limit))
            .await
    }

    async fn facts_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<Versioned<MemberFacts>>> {
        let tenant = tenant.as_str();
        let (tenant, after) = (tenant.to_string(), after.map(str::to_string));
        self.blocking(move |inner| Inner::page(&inner.facts, &tenant, after.as_deref(), limit))
            .await
    }

    async fn order(&self, tenant: &TenantId, order_id: &str) -> ServiceResult<Option<Order>> {
        let tenant = tenant.as_str();
        Inner::get(
            &self.inner.orders,
            &key(&[tenant.as_bytes(), order_id.as_bytes()]),
        )
    }

    async fn orders(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        before: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<Order>> {
        let tenant = tenant.as_str();
        let member = member.as_str();
        let inner = &self.inner;
        let lo = [member_key(tenant, member), vec![0]].concat();
        let hi = match before {
            Some(cursor) => key(&[tenant.as_bytes(), member.as_bytes(), cursor.as_bytes()]),
            None => [member_key(tenant, member), vec![1]].concat(),
        };
        let mut out = Vec::new();
        for guard in inner.history.range(lo.clone()..hi).rev().take(limit) {
            let k = guard.key().map_err(storage)?;
            let cursor = &k[lo.len()..];
            // 16 hex digits of time, then the order id.
            let order_id = cursor.get(16..).unwrap_or_default();
            let ok = key(&[tenant.as_bytes(), order_id]);
            if let Some(order) = Inner::get::<Order>(&inner.orders, &ok)? {
                out.push(order);
            }
        }
        Ok(out)
    }

    async fn tenant_keys(&self, tenant: &TenantId) -> ServiceResult<Vec<StoredTenantKey>> {
        let tenant = tenant.as_str();
        // A tenant has a handful of key versions, read on every profile read: in place, like
        // the other point reads, since a hop to the blocking pool and back cost more than the
        // read itself (docs/benchmarks.md, member service at scale).
        Inner::page(&self.inner.keys, tenant, None, usize::MAX)
    }

    async fn add_tenant_key(
        &self,
        tenant: &TenantId,
        stored: &StoredTenantKey,
    ) -> ServiceResult<bool> {
        let tenant = tenant.as_str();
        let row = key(&[tenant.as_bytes(), &stored.version.to_be_bytes()]);
        let value = encode(stored)?;
        self.write_locked(move |inner| {
            if inner.keys.get(&row).map_err(storage)?.is_some() {
                return Ok(false);
            }
            let mut batch = inner.batch();
            batch.insert(&inner.keys, row, value);
            commit(batch)?;
            Ok(true)
        })
        .await
    }

    async fn setting(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
    ) -> ServiceResult<Option<Vec<u8>>> {
        let tenant = tenant.as_str();
        let row = key(&[tenant.as_bytes(), kind.as_bytes(), name.as_bytes()]);
        Ok(self
            .inner
            .settings
            .get(row)
            .map_err(storage)?
            .map(|v| v.to_vec()))
    }

    async fn put_setting(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
        value: Option<Vec<u8>>,
    ) -> ServiceResult<()> {
        let tenant = tenant.as_str();
        let row = key(&[tenant.as_bytes(), kind.as_bytes(), name.as_bytes()]);
        self.write_locked(move |inner| {
            let mut batch = inner.batch();
            match value {
                Some(value) => batch.insert(&inner.settings, row, value),
                None => batch.remove(&inner.settings, row),
            }
            commit(batch)
        })
        .await
    }

    async fn settings(
        &self,
        tenant: &TenantId,
        kind: &str,
    ) -> ServiceResult<Vec<(String, Vec<u8>)>> {
        let tenant = tenant.as_str();
        let prefix = [key(&[tenant.as_bytes(), kind.as_bytes()]), vec![0]].concat();
        self.inner
            .settings
            .prefix(&prefix)
            .map(|guard| {
                let (k, v) = guard.into_inner().map_err(storage)?;
                let name = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                Ok((name, v.to_vec()))
            })
            .collect()
    }

    async fn add_segment_members(
        &self,
        tenant: &TenantId,
        segment: &str,
        generation: u64,
        members: Vec<String>,
    ) -> ServiceResult<()> {
        let tenant = tenant.as_str();
        let prefix = segment_prefix(tenant, segment, generation);
        self.write_locked(move |inner| {
            let mut batch = inner.batch();
            for member in members {
                batch.insert(
                    &inner.segment_members,
                    [&prefix, member.as_bytes()].concat(),
                    [],
                );
            }
            commit(batch)
        })
        .await
    }

    async fn segment_members(
        &self,
        tenant: &TenantId,
        segment: &str,
        generation: u64,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<String>> {
        let tenant = tenant.as_str();
        let prefix = segment_prefix(tenant, segment, generation);
        ids_after(&self.inner.segment_members, &prefix, after, limit)
    }

    async fn drop_segment_members(
        &self,
        tenant: &TenantId,
        segment: &str,
        generation: u64,
    ) -> ServiceResult<()> {
        let tenant = tenant.as_str();
        let prefix = segment_prefix(tenant, segment, generation);
        self.blocking(move |inner| {
            // In batches, so a large segment does not build one huge write.
            loop {
                let keys: Vec<_> = inner
                    .segment_members
                    .prefix(&prefix)
                    .take(10_000)
                    .map(|g| g.key().map_err(storage))
                    .collect::<ServiceResult<_>>()?;
                if keys.is_empty() {
                    return Ok(());
                }
                let _guard = inner.writing.lock().unwrap_or_else(|p| p.into_inner());
                let mut batch = inner.batch();
                for k in keys {
                    batch.remove(&inner.segment_members, k);
                }
                commit(batch)?;
            }
        })
        .await
    }

    async fn purge(&self) -> ServiceResult<()> {
        self.blocking(|inner| {
            // Every keyspace flushed, then the profiles compacted into one run in which only
            // the newest version of each row survives. The write-ahead journal they share
            // still holds the old rows until it rotates (after 64 MB of writes) and is
            // dropped: fjall offers no way to rotate it sooner (docs/members.md says so).
            for ks in inner.keyspaces() {
                ks.rotate_memtable_and_wait().map_err(storage)?;
            }
            // The indexes too: a released index row ties a phone's keyed hash (or a birthday's)
            // to the member.
            inner.profiles.major_compact().map_err(storage)?;
            inner.indexes.major_compact().map_err(storage)?;
            inner.birthdays.major_compact().map_err(storage)?;
            inner
                .db
                .persist(fjall::PersistMode::SyncAll)
                .map_err(storage)
        })
        .await
    }

    async fn tenants(&self) -> ServiceResult<Vec<String>> {
        let mut tenants = BTreeSet::new();
        for guard in self.inner.keys.iter() {
            let k = guard.key().map_err(storage)?;
            let tenant = k.split(|b| *b == 0).next().unwrap_or_default();
            tenants.insert(String::from_utf8_lossy(tenant).into_owned());
        }
        Ok(tenants.into_iter().collect())
    }

    async fn events_after(&self, seq: u64, limit: usize) -> ServiceResult<Vec<LoggedEvent>> {
        let from = seq.saturating_add(1).to_be_bytes();
        self.inner
            .changes
            .range(from.as_slice()..)
            .take(limit)
            .map(|guard| LoggedEvent::from_record(&guard.value().map_err(storage)?))
            .collect()
    }

    async fn position(&self, reader: &str) -> ServiceResult<u64> {
        Ok(Inner::get(&self.inner.positions, reader.as_bytes())?.unwrap_or(0))
    }

    async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()> {
        let reader = reader.to_string();
        self.write_locked(move |inner| {
            let mut batch = inner.batch();
            batch.insert(&inner.positions, reader.into_bytes(), encode(&seq)?);
            commit(batch)
        })
        .await
    }

    async fn log_end(&self, from: u64) -> ServiceResult<u64> {
        let last = match self.inner.changes.last_key_value() {
            Some(guard) => seq_of(&guard.key().map_err(storage)?)?,
            None => 0,
        };
        Ok(last.max(from))
    }
}

/// The member ids that end the keys under `prefix` (which ends in the 0 separator), after
/// `after`, in order, at most `limit`: a page of a segment or of a birthday.
fn ids_after(
    keyspace: &fjall::Keyspace,
    prefix: &[u8],
    after: Option<&str>,
    limit: usize,
) -> ServiceResult<Vec<String>> {
    let start = match after {
        Some(after) => [prefix, after.as_bytes(), &[0]].concat(),
        None => prefix.to_vec(),
    };
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last = 1;
    }
    keyspace
        .range(start..end)
        .take(limit)
        .map(|guard| {
            let k = guard.key().map_err(storage)?;
            Ok(String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
        })
        .collect()
}
