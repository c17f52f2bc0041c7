//! The member service: registers, updates and reads profiles with their personal data sealed,
//! finds members by phone, email or ID number (and lists them by birthday), tags them, records
//! their orders, rotates a tenant's key, and erases a member's personal data by deleting the
//! key it was sealed with. Every change writes its event to the outbox in the same batch.

use crate::birthday;
use crate::blind::BlindIndex;
use crate::events::MemberEvent;
use crate::facts::MemberFacts;
use crate::mask;
use crate::orders::LedgerPort;
use crate::profile::{Consents, IndexKind, Personal, Profile, StoredProfile};
use crate::store::{MemberRepository, MemberWrite, Versioned, Written};
use crate::vault::{MasterKey, MemberKey, TenantRing, VaultError};
use loyalty_common::clock::SharedClock;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::personal::PersonalData;
use loyalty_common::{ServiceError, Timestamp};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

mod attributes;
mod birthdays;
mod erasure;
mod import;
mod listing;
mod merge;
mod orders;
mod scoring;
mod segments;
mod tags;
mod tiers;

pub use attributes::check_attributes;
pub use birthdays::BirthdayRebuild;
pub use erasure::{ErasureState, ErasureStatus};
pub use import::Importer;
pub use listing::{MemberFilter, MemberPage, SCAN_BUDGET};
pub use merge::{MergeRecord, MergeState};
pub use orders::{OrderInput, Recorded};
pub use scoring::ScoringRun;
pub use segments::{PREVIEW_BUDGET, Preview, Refresh, Segment, SegmentInput};
pub(crate) use tags::check_tags;
pub use tags::{BulkTagged, check_tag};
pub use tiers::TierRun;

/// What a registration sets.
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    pub personal: Personal,
    pub channel: Option<String>,
    pub store: Option<String>,
    pub consents: Consents,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeSet<String>,
}

/// What an update changes: only the fields given. A personal field set to `Some(None)` is
/// cleared; an attribute set to None is removed.
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    pub personal: BTreeMap<String, Option<PersonalData>>,
    pub consents: Option<Consents>,
    pub attributes: BTreeMap<String, Option<String>>,
}

/// How a profile is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Personal data masked (`138****5678`).
    Masked,
    /// Personal data in the clear (the caller holds the unmask permission; audited).
    Unmasked,
}

pub struct Members {
    repo: Arc<dyn MemberRepository>,
    master: MasterKey,
    clock: SharedClock,
    ledger: Option<Arc<dyn LedgerPort>>,
    /// Days after an erasure request by which it must be complete.
    erasure_deadline_days: u32,
    /// Segments being refreshed (`tenant/code`): one refresh of a segment at a time.
    refreshing: std::sync::Mutex<BTreeSet<String>>,
    /// A member was erased since the store last purged old rows. Starts true, so a restart
    /// after an erasure purges too.
    unpurged_erasures: std::sync::atomic::AtomicBool,
    /// Each tenant's key ring as last opened for reading profiles (see [`Self::reading_ring`]).
    rings: std::sync::Mutex<std::collections::HashMap<String, Arc<TenantRing>>>,
}

/// How often a change that lost a race with another is tried again.
const ATTEMPTS: usize = 8;

fn vault_error(e: VaultError) -> ServiceError {
    ServiceError::new(ErrorCode::Internal, format!("member vault: {e}"))
}

fn busy() -> ServiceError {
    ServiceError::new(ErrorCode::VersionConflict, "the member is busy; retry")
}

fn not_found(member: &str) -> ServiceError {
    ServiceError::new(ErrorCode::MemberNotFound, format!("no member {member}"))
}

fn taken(kind: IndexKind, holder: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::DuplicateMember,
        format!(
            "member {holder} of this tenant has this {} already",
            kind.label()
        ),
    )
}

impl Members {
    pub fn new(repo: Arc<dyn MemberRepository>, master: MasterKey, clock: SharedClock) -> Self {
        Self {
            repo,
            master,
            clock,
            ledger: None,
            erasure_deadline_days: 30,
            refreshing: Default::default(),
            unpurged_erasures: std::sync::atomic::AtomicBool::new(true),
            rings: Default::default(),
        }
    }

    /// Orders earn points in `ledger`, and tiers measured in points read it.
    pub fn with_ledger(mut self, ledger: Arc<dyn LedgerPort>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    pub fn with_erasure_deadline_days(mut self, days: u32) -> Self {
        self.erasure_deadline_days = days;
        self
    }

    pub fn repository(&self) -> &Arc<dyn MemberRepository> {
        &self.repo
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// An event about `member`, stamped now.
    pub(crate) fn event(
        &self,
        tenant: &str,
        member: &str,
        name: &str,
        data: &impl Serialize,
    ) -> MemberEvent {
        let id = self.clock.new_ulid().to_string();
        MemberEvent::new(id, tenant, member, name, self.clock.now(), data)
    }

    /// Runs `each` over the facts of every active member of `tenant`, `page` at a time, and
    /// writes what it returns, a page per batch; (members seen, writes that went through).
    /// A member changed between the read and the write is left for the next sweep.
    pub(crate) async fn sweep<F, Fut>(
        &self,
        tenant: &TenantId,
        page: usize,
        mut each: F,
    ) -> ServiceResult<(u64, u64)>
    where
        F: FnMut(Versioned<MemberFacts>) -> Fut + Send,
        Fut: Future<Output = ServiceResult<Option<MemberWrite>>> + Send,
    {
        let (mut seen, mut written) = (0u64, 0u64);
        let mut after: Option<String> = None;
        loop {
            let rows = self.repo.facts_page(tenant, after.as_deref(), page).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.value.member_id.clone());
            let mut writes = Vec::new();
            for facts in rows.into_iter().filter(|f| f.value.is_active()) {
                seen += 1;
                if let Some(write) = each(facts).await? {
                    writes.push(write);
                }
            }
            let outcomes = self.repo.write_many(writes, None).await?;
            written += outcomes.iter().filter(|w| **w == Written::Yes).count() as u64;
        }
        Ok((seen, written))
    }

    /// The tenant's key ring, created on its first use.
    async fn ring(&self, tenant: &TenantId) -> ServiceResult<TenantRing> {
        let stored = self.repo.tenant_keys(tenant).await?;
        if stored.is_empty() {
            let (ring, first) =
                TenantRing::create(&self.master, tenant.as_str()).map_err(vault_error)?;
            if self.repo.add_tenant_key(tenant, &first).await? {
                return Ok(ring);
            }
            // Another writer created it first: use theirs.
            let stored = self.repo.tenant_keys(tenant).await?;
            return TenantRing::open(&self.master, tenant.as_str(), &stored).map_err(vault_error);
        }
        TenantRing::open(&self.master, tenant.as_str(), &stored).map_err(vault_error)
    }

    /// The tenant's key ring for opening `stored`, kept between reads: opening a ring costs a
    /// store read and an unwrap per version, more than the rest of a profile read's crypto.
    /// A ring only grows (a rotation adds the next version), so a kept ring opens every key
    /// it opened before; a key wrapped by a newer version (rotated since, perhaps by another
    /// process) reloads it. Writes use [`Self::ring`], so new keys are wrapped by the newest.
    async fn reading_ring(
        &self,
        tenant: &TenantId,
        stored: &StoredProfile,
    ) -> ServiceResult<Arc<TenantRing>> {
        let needed = stored.key.as_ref().map_or(0, |k| k.tenant_version);
        let kept = self.kept_rings().get(tenant.as_str()).cloned();
        if let Some(ring) = kept.filter(|r| r.current() >= needed) {
            return Ok(ring);
        }
        let ring = Arc::new(self.ring(tenant).await?);
        self.kept_rings()
            .insert(tenant.to_string(), Arc::clone(&ring));
        Ok(ring)
    }

    fn kept_rings(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Arc<TenantRing>>> {
        self.rings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sealed profile and facts of a new member, and its event, ready to write; what a
    /// registration and an import share.
    pub(crate) fn new_member(
        &self,
        ring: &TenantRing,
        blind: &BlindIndex,
        tenant: &str,
        member: &str,
        input: ProfileInput,
        source: &str,
    ) -> ServiceResult<MemberWrite> {
        check_attributes(&input.attributes)?;
        check_tags(&input.tags)?;
        birthday::check(input.personal.birthday.as_ref())?;
        let (key, wrapped) = ring.new_member_key(member).map_err(vault_error)?;
        let now = self.clock.now();
        let profile = StoredProfile {
            tenant: tenant.into(),
            member_id: member.into(),
            sealed: seal_all(&key, &input.personal)?,
            key: Some(wrapped),
            indexes: indexes_of(blind, &input.personal)?,
            updated_at: now,
            erased_at: None,
            merged_into: None,
            version: 1,
            birthday: birthday::index(blind, &input.personal),
        };
        let mut facts = MemberFacts::new(member, now);
        facts.channel = input.channel;
        facts.store = input.store;
        facts.consents = input.consents;
        facts.attributes = input.attributes;
        facts.tags = input.tags;
        let created = serde_json::json!({
            "source": source,
            "channel": facts.channel,
            "store": facts.store,
            "consents": facts.consents,
        });
        Ok(MemberWrite {
            tenant: tenant.into(),
            member: member.into(),
            events: vec![self.event(tenant, member, "created", &created)],
            profile: Some(profile),
            facts: Some(Versioned {
                version: 1,
                value: facts,
            }),
            ..MemberWrite::default()
        })
    }

    /// Registers a new member with `input`; DUPLICATE_MEMBER if another member of the tenant
    /// has its phone, email or ID number.
    pub async fn register(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        input: ProfileInput,
    ) -> ServiceResult<Profile> {
        let already = || {
            ServiceError::new(
                ErrorCode::AlreadyExists,
                format!("member {member} is registered already"),
            )
        };
        if self.repo.profile(tenant, member).await?.is_some() {
            return Err(already());
        }
        let ring = self.ring(tenant).await?;
        let blind = BlindIndex::for_tenant(&self.master, tenant.as_str());
        let write = self.new_member(
            &ring,
            &blind,
            tenant.as_str(),
            member.as_str(),
            input,
            "api",
        )?;
        let (profile, facts) = (write.profile.clone(), write.facts.clone());
        match self.repo.write(write).await? {
            Written::Yes => {}
            Written::Taken(kind, holder) => return Err(taken(kind, &holder)),
            _ => return Err(already()),
        }
        match (profile, facts) {
            (Some(p), Some(f)) => self.opened(&ring, &p, &f),
            _ => Err(ServiceError::internal("a registration without its rows")),
        }
    }

    /// Changes the given fields; the profile, masked.
    pub async fn update(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        patch: ProfilePatch,
    ) -> ServiceResult<Profile> {
        for name in patch.personal.keys() {
            if !Personal::FIELDS.contains(&name.as_str()) {
                return Err(ServiceError::invalid(format!(
                    "{name} is not a profile field"
                )));
            }
        }
        if let Some(set) = patch.personal.get("birthday") {
            birthday::check(set.as_ref())?;
        }
        let ring = self.ring(tenant).await?;
        let blind = BlindIndex::for_tenant(&self.master, tenant.as_str());
        for _ in 0..ATTEMPTS {
            let (mut stored, mut facts) = self.live(tenant, member).await?;
            let key = member_key(&ring, &stored)?;
            let mut personal = self.opened(&ring, &stored, &facts)?.personal;
            for (name, value) in &patch.personal {
                if let Some(slot) = personal.slot(name) {
                    *slot = value.clone();
                }
            }
            let indexes = indexes_of(&blind, &personal)?;
            let released = stored
                .indexes
                .iter()
                .filter(|i| !indexes.contains(i))
                .copied()
                .collect();
            // A profile stored before the birthday index holds none: an update adds it.
            let birthday = birthday::index(&blind, &personal);
            let released_birthday = stored.birthday.filter(|b| Some(*b) != birthday);
            stored.sealed = seal_all(&key, &personal)?;
            stored.indexes = indexes;
            stored.birthday = birthday;
            stored.updated_at = self.clock.now();
            stored.version += 1;
            if let Some(consents) = patch.consents {
                facts.value.consents = consents;
            }
            for (name, value) in &patch.attributes {
                match value {
                    Some(v) => facts.value.attributes.insert(name.clone(), v.clone()),
                    None => facts.value.attributes.remove(name),
                };
            }
            check_attributes(&facts.value.attributes)?;
            facts.version += 1;
            let changed: Vec<&String> = patch.personal.keys().collect();
            let data = serde_json::json!({
                "fields": changed,
                "consents": patch.consents,
                "attributes": patch.attributes.keys().collect::<Vec<_>>(),
            });
            let write = MemberWrite {
                tenant: tenant.to_string(),
                member: member.to_string(),
                events: vec![self.event(tenant.as_str(), member.as_str(), "updated", &data)],
                profile: Some(stored),
                released,
                released_birthday,
                facts: Some(facts),
                ..MemberWrite::default()
            };
            match self.repo.write(write).await? {
                Written::Yes => return self.profile(tenant, member, View::Masked).await,
                Written::Taken(kind, holder) => return Err(taken(kind, &holder)),
                _ => continue,
            }
        }
        Err(busy())
    }

    /// The member's profile, masked or not.
    pub async fn profile(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        view: View,
    ) -> ServiceResult<Profile> {
        let (stored, facts) = self.live(tenant, member).await?;
        let ring = self.reading_ring(tenant, &stored).await?;
        let mut profile = self.opened(&ring, &stored, &facts)?;
        if view == View::Masked {
            profile.personal = profile.personal.masked();
        }
        Ok(profile)
    }

    fn opened(
        &self,
        ring: &TenantRing,
        stored: &StoredProfile,
        facts: &Versioned<MemberFacts>,
    ) -> ServiceResult<Profile> {
        let key = member_key(ring, stored)?;
        let mut personal = Personal::default();
        for (name, sealed) in &stored.sealed {
            let value = key.open(name, sealed).map_err(vault_error)?;
            if let Some(slot) = personal.slot(name) {
                *slot = Some(PersonalData::from(value));
            }
        }
        let f = &facts.value;
        Ok(Profile {
            member_id: stored.member_id.clone(),
            personal,
            channel: f.channel.clone(),
            store: f.store.clone(),
            consents: f.consents,
            attributes: f.attributes.clone(),
            tags: f.tags.clone(),
            tier: f.tier.clone(),
            created_at: f.created_at,
            updated_at: stored.updated_at,
            version: stored.version + facts.version,
        })
    }

    /// The member's facts (spend, tier, scores, tags), erased or not.
    pub async fn facts(&self, tenant: &TenantId, member: &MemberId) -> ServiceResult<MemberFacts> {
        Ok(self.existing(tenant, member).await?.1.value)
    }

    /// The member of the tenant with this phone, email or ID number, if any.
    pub async fn find(
        &self,
        tenant: &TenantId,
        kind: IndexKind,
        value: &str,
    ) -> ServiceResult<Option<String>> {
        let blind = BlindIndex::for_tenant(&self.master, tenant.as_str());
        let Some(index) = blind.index(kind.into(), value) else {
            return Ok(None);
        };
        self.repo.member_by_index(tenant, kind, &index).await
    }

    /// One-way digests of the member's blind indexes (`phone:<32 hex>`, ...): equal values
    /// give equal fingerprints within the tenant, and a fingerprint finds nothing in the
    /// indexes, so a service that keeps them holds no key to the member's data.
    pub async fn fingerprints(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<Vec<String>> {
        let (stored, _) = self.live(tenant, member).await?;
        Ok(stored
            .indexes
            .iter()
            .map(|(kind, index)| {
                let digest = ring::digest::digest(&ring::digest::SHA256, index);
                format!("{}:{}", kind.label(), hex::encode(&digest.as_ref()[..16]))
            })
            .collect())
    }

    /// The stored profile and facts of a member, erased or not.
    async fn existing(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<(StoredProfile, Versioned<MemberFacts>)> {
        match self.repo.member(tenant, member).await? {
            (Some(profile), Some(facts)) => Ok((profile, facts)),
            _ => Err(not_found(member.as_str())),
        }
    }

    /// The stored profile and facts of a member that exists and is not erased.
    async fn live(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<(StoredProfile, Versioned<MemberFacts>)> {
        let (stored, facts) = self.existing(tenant, member).await?;
        if stored.erased_at.is_some() {
            return Err(ServiceError::new(
                ErrorCode::MemberErased,
                format!("member {member}'s personal data was erased"),
            ));
        }
        if let Some(survivor) = &stored.merged_into {
            return Err(ServiceError::new(
                ErrorCode::MemberMerged,
                format!("member {member} was merged into member {survivor}"),
            ));
        }
        Ok((stored, facts))
    }

    /// Adds a key version for the tenant and re-wraps every member key under it; the number
    /// of members re-wrapped. Profiles stay readable throughout.
    pub async fn rotate_tenant_key(&self, tenant: &TenantId) -> ServiceResult<usize> {
        let mut ring = self.ring(tenant).await?;
        let added = ring.rotate(&self.master).map_err(vault_error)?;
        if !self.repo.add_tenant_key(tenant, &added).await? {
            return Err(ServiceError::new(
                ErrorCode::VersionConflict,
                "the tenant's key is being rotated; retry",
            ));
        }
        let mut rewrapped = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .repo
                .profiles_page(tenant, after.as_deref(), 1_000)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.member_id.clone());
            let mut writes = Vec::new();
            for mut stored in page {
                let Some(wrapped) = &stored.key else { continue };
                let Some(new) = ring
                    .rewrap(&stored.member_id, wrapped)
                    .map_err(vault_error)?
                else {
                    continue;
                };
                stored.key = Some(new);
                stored.version += 1;
                writes.push(MemberWrite {
                    tenant: tenant.to_string(),
                    member: stored.member_id.clone(),
                    profile: Some(stored),
                    ..MemberWrite::default()
                });
            }
            // A profile changed meanwhile keeps its older wrapping: still readable, and
            // re-wrapped by the next rotation.
            let outcomes = self.repo.write_many(writes, None).await?;
            rewrapped += outcomes.iter().filter(|w| **w == Written::Yes).count();
        }
        Ok(rewrapped)
    }
}

/// The member's key, unwrapped.
fn member_key(ring: &TenantRing, stored: &StoredProfile) -> ServiceResult<MemberKey> {
    let Some(wrapped) = &stored.key else {
        return Err(ServiceError::internal("a live member without its key"));
    };
    ring.member_key(&stored.member_id, wrapped)
        .map_err(vault_error)
}

/// The blind indexes of the searchable fields; an error names a malformed one, masked.
pub(crate) fn indexes_of(
    blind: &BlindIndex,
    p: &Personal,
) -> ServiceResult<Vec<(IndexKind, [u8; 32])>> {
    let mut out = Vec::new();
    let searchable = [
        (IndexKind::Phone, &p.phone),
        (IndexKind::Email, &p.email),
        (IndexKind::IdNumber, &p.id_number),
    ];
    for (kind, value) in searchable {
        let Some(value) = value else { continue };
        let value = value.expose();
        let index = blind.index(kind.into(), value).ok_or_else(|| {
            ServiceError::invalid(format!(
                "{} is not a valid {}",
                mask_for(kind, value),
                kind.label()
            ))
        })?;
        out.push((kind, index));
    }
    Ok(out)
}

fn seal_all(key: &MemberKey, personal: &Personal) -> ServiceResult<BTreeMap<String, Vec<u8>>> {
    let mut sealed = BTreeMap::new();
    for name in Personal::FIELDS {
        if let Some(value) = personal.get(name) {
            sealed.insert(
                name.to_string(),
                key.seal(name, value.expose()).map_err(vault_error)?,
            );
        }
    }
    Ok(sealed)
}

fn mask_for(kind: IndexKind, value: &str) -> String {
    match kind {
        IndexKind::Phone => mask::phone(value),
        IndexKind::Email => mask::email(value),
        IndexKind::IdNumber => mask::id_number(value),
    }
}

#[cfg(test)]
mod birthday_tests;
#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod listing_tests;
#[cfg(test)]
mod tests;
