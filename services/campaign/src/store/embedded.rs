//! The embedded adapter of [`CampaignRepository`]: fjall keyspaces under
//! `<data_dir>/campaign`, rows in postcard. Writes run one at a time on a blocking thread,
//! so a redemption reads its counters and writes them back with nothing in between; each
//! batch is synced before it is acknowledged, one sync for many batches (`writer`).

use super::{
    Added, CampaignRepository, ExpiryCursor, Limit, LimitReached, NewCoupon, Redeemed, Settled,
    Versioned,
};
use crate::coupon::{Coupon, Redemption, RedemptionState, Usage};
use crate::events::{CampaignEvent, LoggedEvent};
use crate::template::CouponTemplate;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use loyalty_common::store_metrics::timed;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

mod check_ins;
mod draws;
mod mall;
mod plans;
mod referrals;
mod results;
mod sales;
mod writer;

use writer::{Durability, Writer};

/// Small memtables: the campaign store's rows are few and small next to the ledger's.
const MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;
const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;
const CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// The meta row holding the expiring-soon sweep's cursor.
/// The meta key of the expiring-soon sweep's cursor `name` (`expiry_cursor` in one region).
fn expiry_cursor_key(name: &str) -> Vec<u8> {
    format!("{name}_cursor").into_bytes()
}

/// Cheap to clone: clones share one database and its writer thread.
#[derive(Clone)]
pub struct EmbeddedCampaignStore {
    /// Dropped first: the writer thread is stopped before the database closes.
    writer: Arc<Writer>,
    inner: Arc<Inner>,
}

struct Inner {
    db: fjall::Database,
    /// tenant, template → Versioned<CouponTemplate>.
    templates: fjall::Keyspace,
    /// tenant, code → Coupon.
    coupons: fjall::Keyspace,
    /// tenant, member, code → ().
    member_coupons: fjall::Keyspace,
    /// tenant, issue key → code.
    issue_keys: fjall::Keyspace,
    /// tenant, "c", code | tenant, "m", template, member | tenant, "t", template → u64.
    usage: fjall::Keyspace,
    /// tenant, redemption id → Redemption.
    redemptions: fjall::Keyspace,
    /// hold until, tenant, redemption id → (): held redemptions by when they lapse.
    holds: fjall::Keyspace,
    /// valid until, tenant, code → (): member-held coupons by when they lapse.
    expiry: fjall::Keyspace,
    /// tenant, sale → SaleState (JSON).
    sales: fjall::Keyspace,
    /// tenant, sale, member → u32: units the member holds or bought.
    sale_members: fjall::Keyspace,
    /// tenant, sale, claim id → Claim.
    claims: fjall::Keyspace,
    /// hold until, tenant, sale, claim id → (): held claims by when they lapse.
    claim_holds: fjall::Keyspace,
    /// tenant, campaign → CampaignRecord (JSON).
    plans: fjall::Keyspace,
    /// tenant, campaign, grant key → Grant.
    grants: fjall::Keyspace,
    /// tenant, campaign, member, period → u32: the member's grants in the cap's period.
    plan_members: fjall::Keyspace,
    /// made at, tenant, campaign, grant key → (): reserved grants by when they were made.
    grant_holds: fjall::Keyspace,
    /// tenant, campaign → BTreeMap<arm, Counts> (JSON).
    results: fjall::Keyspace,
    /// tenant, campaign, fact key → (): the facts counted in `results`.
    result_facts: fjall::Keyspace,
    /// tenant, what is linked, campaign, at → arm.
    result_links: fjall::Keyspace,
    /// tenant, campaign, member → (last day, streak): check-ins.
    check_ins: fjall::Keyspace,
    /// tenant, item → ItemState (JSON): the mall's items with their units taken.
    mall_items: fjall::Keyspace,
    /// tenant, item, member, period → u32: units the member ordered in the period.
    mall_members: fjall::Keyspace,
    /// tenant, item, order id → Order.
    mall_orders: fjall::Keyspace,
    /// due, tenant, item, order id → (): pending and placed orders by when they are due.
    mall_due: fjall::Keyspace,
    /// tenant, draw → DrawState (JSON): lucky draws with what they awarded.
    draws: fjall::Keyspace,
    /// tenant, draw, member, period → u32: entries the member made in the period.
    draw_members: fjall::Keyspace,
    /// tenant, draw, entry id → Entry.
    draw_entries: fjall::Keyspace,
    /// due, tenant, draw, entry id → (): drawn entries not yet paid, by when they are due.
    draw_due: fjall::Keyspace,
    /// tenant, "c", code → member | tenant, "m", member → code: referral codes.
    referral_codes: fjall::Keyspace,
    /// tenant, "f", fingerprint, member → () | tenant, "m", member, fingerprint → ().
    fingerprints: fjall::Keyspace,
    /// tenant, referee, campaign → Referral.
    referrals: fjall::Keyspace,
    /// tenant, campaign, referrer → u32: the referrer's rewarded referrals.
    referrer_counts: fjall::Keyspace,
    changes: fjall::Keyspace,
    positions: fjall::Keyspace,
    meta: fjall::Keyspace,
    /// The sequence number of the newest event in `changes`; moved on the writer thread.
    last_seq: AtomicU64,
    durability: Durability,
}

fn storage(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::unavailable(format!("campaign store: {e}"))
}

fn encode<T: Serialize>(value: &T) -> ServiceResult<Vec<u8>> {
    postcard::to_allocvec(value).map_err(ServiceError::internal)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> ServiceResult<T> {
    postcard::from_bytes(bytes).map_err(ServiceError::internal)
}

/// Templates are kept as JSON: their benefit is an internally tagged enum, which postcard
/// cannot read back.
fn encode_template(t: &Versioned<CouponTemplate>) -> ServiceResult<Vec<u8>> {
    serde_json::to_vec(t).map_err(ServiceError::internal)
}

fn decode_template(bytes: &[u8]) -> ServiceResult<Versioned<CouponTemplate>> {
    serde_json::from_slice(bytes).map_err(ServiceError::internal)
}

fn key(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&0u8)
}

/// A time as a key part that sorts as it reads (times before 1970 sort first, together).
fn time_part(ms: i64) -> [u8; 8] {
    u64::try_from(ms).unwrap_or(0).to_be_bytes()
}

fn code_usage_key(tenant: &str, code: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), b"c", code.as_bytes()])
}

fn member_usage_key(tenant: &str, template: &str, member: &str) -> Vec<u8> {
    key(&[
        tenant.as_bytes(),
        b"m",
        template.as_bytes(),
        member.as_bytes(),
    ])
}

fn total_usage_key(tenant: &str, template: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), b"t", template.as_bytes()])
}

fn hold_key(r: &Redemption) -> Vec<u8> {
    let until = time_part(r.hold_until_ms.unwrap_or(0));
    key(&[&until, r.tenant.as_bytes(), r.id.as_bytes()])
}

fn expiry_key(tenant: &str, coupon: &Coupon) -> Vec<u8> {
    let until = time_part(coupon.valid_until_ms);
    key(&[&until, tenant.as_bytes(), coupon.code.as_bytes()])
}

impl EmbeddedCampaignStore {
    /// The store at `dir`.
    pub fn open(dir: &Path) -> ServiceResult<Self> {
        let db = fjall::Database::builder(dir)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .cache_size(CACHE_BYTES)
            .open()
            .map_err(|e| {
                ServiceError::unavailable(format!(
                    "cannot open the campaign store at {} ({e}); is another memberd using it?",
                    dir.display()
                ))
            })?;
        let ks = |name: &str| {
            db.keyspace(name, || {
                fjall::KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(storage)
        };
        let changes = ks("changes")?;
        let last_seq = match changes.last_key_value() {
            Some(guard) => seq_of(&guard.key().map_err(storage)?)?,
            None => 0,
        };
        let inner = Arc::new(Inner {
            templates: ks("templates")?,
            coupons: ks("coupons")?,
            member_coupons: ks("member_coupons")?,
            issue_keys: ks("issue_keys")?,
            usage: ks("usage")?,
            redemptions: ks("redemptions")?,
            holds: ks("holds")?,
            expiry: ks("expiry")?,
            sales: ks("sales")?,
            sale_members: ks("sale_members")?,
            claims: ks("claims")?,
            claim_holds: ks("claim_holds")?,
            plans: ks("plans")?,
            grants: ks("grants")?,
            plan_members: ks("plan_members")?,
            grant_holds: ks("grant_holds")?,
            check_ins: ks("check_ins")?,
            mall_items: ks("mall_items")?,
            mall_members: ks("mall_members")?,
            mall_orders: ks("mall_orders")?,
            mall_due: ks("mall_due")?,
            draws: ks("draws")?,
            draw_members: ks("draw_members")?,
            draw_entries: ks("draw_entries")?,
            draw_due: ks("draw_due")?,
            referral_codes: ks("referral_codes")?,
            fingerprints: ks("fingerprints")?,
            referrals: ks("referrals")?,
            referrer_counts: ks("referrer_counts")?,
            results: ks("results")?,
            result_facts: ks("result_facts")?,
            result_links: ks("result_links")?,
            positions: ks("positions")?,
            meta: ks("meta")?,
            changes,
            last_seq: AtomicU64::new(last_seq),
            durability: Durability::recovered(last_seq),
            db,
        });
        Ok(Self {
            writer: Arc::new(Writer::start(Arc::clone(&inner))?),
            inner,
        })
    }
}

fn seq_of(key: &[u8]) -> ServiceResult<u64> {
    Ok(u64::from_be_bytes(key.try_into().map_err(|_| {
        ServiceError::internal("bad campaign change key")
    })?))
}

impl Inner {
    fn get<T: DeserializeOwned>(ks: &fjall::Keyspace, row: &[u8]) -> ServiceResult<Option<T>> {
        timed("campaign", ks.name(), "get", || {
            ks.get(row).map_err(storage)
        })?
        .map(|v| decode(&v))
        .transpose()
    }

    /// A batch that goes to the journal unsynced: the writer thread syncs it, with others.
    fn batch(&self) -> fjall::OwnedWriteBatch {
        self.db.batch().durability(None)
    }

    fn counter(&self, row: &[u8]) -> ServiceResult<u64> {
        Ok(Self::get::<u64>(&self.usage, row)?.unwrap_or(0))
    }

    /// Appends `events` to the outbox in `batch`; the sequence moves only once the batch
    /// is committed (on the writer thread).
    fn log(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<u64> {
        let mut seq = self.last_seq.load(Ordering::SeqCst);
        for event in events {
            seq += 1;
            batch.insert(
                &self.changes,
                seq.to_be_bytes(),
                LoggedEvent {
                    seq,
                    event,
                    trace: None,
                }
                .record()?,
            );
        }
        Ok(seq)
    }

    fn commit(&self, batch: fjall::OwnedWriteBatch, seq: u64) -> ServiceResult<()> {
        timed("campaign", "journal", "write", || {
            batch.commit().map_err(storage)
        })?;
        self.last_seq.store(seq, Ordering::SeqCst);
        self.durability.committed();
        Ok(())
    }

    /// The counters of one coupon of a redemption, read, or as the batch left them.
    fn usage_rows(r: &Redemption, code: &str, template: &str) -> [Vec<u8>; 3] {
        [
            code_usage_key(&r.tenant, code),
            member_usage_key(&r.tenant, template, &r.member),
            total_usage_key(&r.tenant, template),
        ]
    }

    /// Moves the counters of every coupon of `r` by `delta` (±1) in `batch`, checking the
    /// limits when counting up; the first limit reached, if any, and nothing staged then.
    fn count(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        r: &Redemption,
        limits: &[Limit],
        up: bool,
    ) -> ServiceResult<Option<(String, LimitReached)>> {
        let mut staged: HashMap<Vec<u8>, u64> = HashMap::new();
        for c in &r.coupons {
            let rows = Self::usage_rows(r, &c.code, &c.template);
            let limit = limits.iter().find(|l| l.code == c.code);
            let caps = [
                (
                    limit.map(|l| u64::from(l.uses_per_code)),
                    LimitReached::Code,
                ),
                (
                    limit.and_then(|l| l.per_member_limit.map(u64::from)),
                    LimitReached::Member,
                ),
                (limit.and_then(|l| l.total_limit), LimitReached::Total),
            ];
            for (row, (cap, reached)) in rows.into_iter().zip(caps) {
                let now = match staged.get(&row) {
                    Some(n) => *n,
                    None => self.counter(&row)?,
                };
                let next = if up {
                    if cap.is_some_and(|cap| now >= cap) {
                        return Ok(Some((c.code.clone(), reached)));
                    }
                    now + 1
                } else {
                    now.saturating_sub(1)
                };
                staged.insert(row, next);
            }
        }
        for (row, n) in staged {
            batch.insert(&self.usage, row, encode(&n)?);
        }
        Ok(None)
    }
}

#[async_trait]
impl CampaignRepository for EmbeddedCampaignStore {
    async fn template(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> ServiceResult<Option<Versioned<CouponTemplate>>> {
        self.settled().await?;
        let row = key(&[tenant.as_str().as_bytes(), id.as_bytes()]);
        self.inner
            .templates
            .get(row)
            .map_err(storage)?
            .map(|v| decode_template(&v))
            .transpose()
    }

    async fn templates(&self, tenant: &TenantId) -> ServiceResult<Vec<Versioned<CouponTemplate>>> {
        self.settled().await?;
        let prefix = [tenant.as_str().as_bytes(), &[0]].concat();
        self.inner
            .templates
            .prefix(&prefix)
            .map(|guard| decode_template(&guard.value().map_err(storage)?))
            .collect()
    }

    async fn put_template(
        &self,
        tenant: &TenantId,
        template: &Versioned<CouponTemplate>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<bool> {
        let row = key(&[tenant.as_str().as_bytes(), template.value.id.as_bytes()]);
        let template = template.clone();
        self.write_locked(move |inner| {
            let stored = match inner.templates.get(&row).map_err(storage)? {
                Some(bytes) => decode_template(&bytes)?.version,
                None => 0,
            };
            if stored + 1 != template.version {
                return Ok(false);
            }
            let mut batch = inner.batch();
            batch.insert(&inner.templates, row, encode_template(&template)?);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(true)
        })
        .await
    }

    async fn add_coupons(
        &self,
        tenant: &TenantId,
        coupons: Vec<NewCoupon>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Vec<Added>> {
        let tenant = tenant.as_str().to_string();
        self.write_locked(move |inner| {
            let t = tenant.as_bytes();
            let mut batch = inner.batch();
            let mut codes = std::collections::HashSet::new();
            let mut keys: HashMap<String, Coupon> = HashMap::new();
            let mut outcomes = Vec::with_capacity(coupons.len());
            let mut logged = Vec::new();
            for NewCoupon {
                coupon,
                issue_key,
                events: issued,
            } in coupons
            {
                if let Some(k) = &issue_key {
                    if let Some(earlier) = keys.get(k) {
                        outcomes.push(Added::IssuedAlready(earlier.clone()));
                        continue;
                    }
                    let key_row = key(&[t, k.as_bytes()]);
                    if let Some(code) = Inner::get::<String>(&inner.issue_keys, &key_row)? {
                        let row = key(&[t, code.as_bytes()]);
                        let stored =
                            Inner::get::<Coupon>(&inner.coupons, &row)?.ok_or_else(|| {
                                ServiceError::internal("an issue key without its coupon")
                            })?;
                        outcomes.push(Added::IssuedAlready(stored));
                        continue;
                    }
                }
                let row = key(&[t, coupon.code.as_bytes()]);
                if codes.contains(&coupon.code)
                    || inner.coupons.contains_key(&row).map_err(storage)?
                {
                    outcomes.push(Added::CodeTaken);
                    continue;
                }
                batch.insert(&inner.coupons, row, encode(&coupon)?);
                if let Some(member) = &coupon.member {
                    let mine = key(&[t, member.as_bytes(), coupon.code.as_bytes()]);
                    batch.insert(&inner.member_coupons, mine, []);
                    batch.insert(&inner.expiry, expiry_key(&tenant, &coupon), []);
                }
                if let Some(k) = issue_key {
                    batch.insert(
                        &inner.issue_keys,
                        key(&[t, k.as_bytes()]),
                        encode(&coupon.code)?,
                    );
                    keys.insert(k, coupon.clone());
                }
                codes.insert(coupon.code);
                logged.extend(issued);
                outcomes.push(Added::Yes);
            }
            logged.extend(events);
            let seq = inner.log(&mut batch, logged)?;
            inner.commit(batch, seq)?;
            Ok(outcomes)
        })
        .await
    }

    async fn coupon(&self, tenant: &TenantId, code: &str) -> ServiceResult<Option<Coupon>> {
        self.settled().await?;
        Inner::get(
            &self.inner.coupons,
            &key(&[tenant.as_str().as_bytes(), code.as_bytes()]),
        )
    }

    async fn member_coupons(
        &self,
        tenant: &TenantId,
        member: &str,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<Coupon>> {
        self.settled().await?;
        let t = tenant.as_str().as_bytes();
        let prefix = [key(&[t, member.as_bytes()]), vec![0]].concat();
        let start = match after {
            Some(after) => [key(&[t, member.as_bytes(), after.as_bytes()]), vec![0]].concat(),
            None => prefix.clone(),
        };
        let end = [key(&[t, member.as_bytes()]), vec![1]].concat();
        let mut found = Vec::new();
        for guard in self.inner.member_coupons.range(start..end).take(limit) {
            let row = guard.key().map_err(storage)?;
            let code = row.get(prefix.len()..).unwrap_or_default();
            if let Some(c) = Inner::get(&self.inner.coupons, &key(&[t, code]))? {
                found.push(c);
            }
        }
        Ok(found)
    }

    async fn usage(
        &self,
        tenant: &TenantId,
        template: &str,
        code: &str,
        member: &str,
    ) -> ServiceResult<Usage> {
        self.settled().await?;
        let t = tenant.as_str();
        let inner = &self.inner;
        Ok(Usage {
            code_uses: u32::try_from(inner.counter(&code_usage_key(t, code))?).unwrap_or(u32::MAX),
            member_uses: u32::try_from(inner.counter(&member_usage_key(t, template, member))?)
                .unwrap_or(u32::MAX),
            total_uses: inner.counter(&total_usage_key(t, template))?,
        })
    }

    async fn redemption(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<Redemption>> {
        self.settled().await?;
        Inner::get(
            &self.inner.redemptions,
            &key(&[tenant.as_str().as_bytes(), id.as_bytes()]),
        )
    }

    async fn redeem(
        &self,
        redemption: &Redemption,
        limits: &[Limit],
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Redeemed> {
        let (r, limits) = (redemption.clone(), limits.to_vec());
        self.write_locked(move |inner| {
            let row = key(&[r.tenant.as_bytes(), r.id.as_bytes()]);
            if let Some(stored) = Inner::get::<Redemption>(&inner.redemptions, &row)? {
                return Ok(Redeemed::Exists(Box::new(stored)));
            }
            let mut batch = inner.batch();
            if let Some((code, reached)) = inner.count(&mut batch, &r, &limits, true)? {
                return Ok(Redeemed::Refused(code, reached));
            }
            batch.insert(&inner.redemptions, row, encode(&r)?);
            if r.state == RedemptionState::Held {
                batch.insert(&inner.holds, hold_key(&r), []);
            }
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(Redeemed::Yes)
        })
        .await
    }

    async fn settle(
        &self,
        tenant: &TenantId,
        id: &str,
        from: RedemptionState,
        to: RedemptionState,
        at_ms: i64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Settled> {
        let row = key(&[tenant.as_str().as_bytes(), id.as_bytes()]);
        self.write_locked(move |inner| {
            let Some(mut r) = Inner::get::<Redemption>(&inner.redemptions, &row)? else {
                return Ok(Settled::Missing);
            };
            if r.state != from {
                return Ok(Settled::NotFrom(Box::new(r)));
            }
            let mut batch = inner.batch();
            if from.counts() && !to.counts() {
                inner.count(&mut batch, &r, &[], false)?;
            }
            if from == RedemptionState::Held {
                batch.remove(&inner.holds, hold_key(&r));
                r.hold_until_ms = None;
            }
            r.state = to;
            r.updated_ms = at_ms;
            batch.insert(&inner.redemptions, row, encode(&r)?);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(Settled::Yes(Box::new(r)))
        })
        .await
    }

    async fn lapsed_holds(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Redemption>> {
        self.settled().await?;
        let end = time_part(before_ms);
        let mut found = Vec::new();
        for guard in self.inner.holds.range(..end.to_vec()).take(limit) {
            let row = guard.key().map_err(storage)?;
            let mut parts = row.get(9..).unwrap_or_default().splitn(2, |b| *b == 0);
            let (Some(tenant), Some(id)) = (parts.next(), parts.next()) else {
                return Err(ServiceError::internal("bad hold key"));
            };
            if let Some(r) = Inner::get(&self.inner.redemptions, &key(&[tenant, id]))? {
                found.push(r);
            }
        }
        Ok(found)
    }

    async fn coupons_lapsing(
        &self,
        after: &ExpiryCursor,
        until_ms: i64,
        limit: usize,
    ) -> ServiceResult<Vec<(String, Coupon)>> {
        self.settled().await?;
        let start = [
            key(&[
                &time_part(after.until_ms),
                after.tenant.as_bytes(),
                after.code.as_bytes(),
            ]),
            vec![0],
        ]
        .concat();
        let end = time_part(until_ms.saturating_add(1));
        let mut found = Vec::new();
        for guard in self.inner.expiry.range(start..end.to_vec()).take(limit) {
            let row = guard.key().map_err(storage)?;
            let mut parts = row.get(9..).unwrap_or_default().splitn(2, |b| *b == 0);
            let (Some(tenant), Some(code)) = (parts.next(), parts.next()) else {
                return Err(ServiceError::internal("bad expiry key"));
            };
            if let Some(c) = Inner::get(&self.inner.coupons, &key(&[tenant, code]))? {
                found.push((String::from_utf8_lossy(tenant).into_owned(), c));
            }
        }
        Ok(found)
    }

    async fn expiry_cursor(&self, name: &str) -> ServiceResult<ExpiryCursor> {
        self.settled().await?;
        Ok(Inner::get(&self.inner.meta, &expiry_cursor_key(name))?.unwrap_or_default())
    }

    async fn advance_expiry(
        &self,
        name: &str,
        cursor: ExpiryCursor,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<()> {
        let key = expiry_cursor_key(name);
        self.write_locked(move |inner| {
            let mut batch = inner.batch();
            batch.insert(&inner.meta, key, encode(&cursor)?);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)
        })
        .await
    }

    async fn events_after(&self, seq: u64, limit: usize) -> ServiceResult<Vec<LoggedEvent>> {
        // Only what is synced: an event handed on must never be taken back by a crash.
        let durable = self.inner.durability.durable_seq();
        if seq >= durable {
            return Ok(Vec::new());
        }
        let (start, end) = (seq.saturating_add(1).to_be_bytes(), durable.to_be_bytes());
        self.inner
            .changes
            .range(start..=end)
            .take(limit)
            .map(|guard| LoggedEvent::from_record(&guard.value().map_err(storage)?))
            .collect()
    }

    async fn position(&self, reader: &str) -> ServiceResult<u64> {
        self.settled().await?;
        Ok(Inner::get(&self.inner.positions, reader.as_bytes())?.unwrap_or(0))
    }

    async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()> {
        let reader = reader.to_string();
        self.write_locked(move |inner| {
            let mut batch = inner.batch();
            batch.insert(&inner.positions, reader.into_bytes(), encode(&seq)?);
            timed("campaign", "journal", "write", || {
                batch.commit().map_err(storage)
            })?;
            inner.durability.committed();
            Ok(())
        })
        .await
    }

    async fn log_end(&self, from: u64) -> ServiceResult<u64> {
        // What the log serves: the synced events.
        Ok(self.inner.durability.durable_seq().max(from))
    }
}
