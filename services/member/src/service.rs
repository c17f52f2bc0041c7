//! The member service: registers and reads profiles with their personal data sealed, finds
//! members by phone, email or ID number, rotates a tenant's key, and erases a member's
//! personal data by deleting the key it was sealed with.

use crate::blind::BlindIndex;
use crate::mask;
use crate::profile::{Consents, IndexKind, Personal, Profile, StoredProfile};
use crate::store::{MemberRepository, Written};
use crate::vault::{MasterKey, MemberKey, TenantRing, VaultError};
use loyalty_common::clock::SharedClock;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::{ServiceError, Timestamp};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a registration or an update sets.
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    pub personal: Personal,
    pub channel: Option<String>,
    pub store: Option<String>,
    pub consents: Consents,
    pub attributes: BTreeMap<String, String>,
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
}

fn vault_error(e: VaultError) -> ServiceError {
    ServiceError::new(ErrorCode::Internal, format!("member vault: {e}"))
}

const FIELDS: [&str; 7] = [
    "name",
    "gender",
    "birthday",
    "phone",
    "email",
    "id_number",
    "address",
];

fn field<'a>(personal: &'a Personal, name: &str) -> Option<&'a String> {
    match name {
        "name" => personal.name.as_ref(),
        "gender" => personal.gender.as_ref(),
        "birthday" => personal.birthday.as_ref(),
        "phone" => personal.phone.as_ref(),
        "email" => personal.email.as_ref(),
        "id_number" => personal.id_number.as_ref(),
        "address" => personal.address.as_ref(),
        _ => None,
    }
}

fn set_field(personal: &mut Personal, name: &str, value: String) {
    let slot = match name {
        "name" => &mut personal.name,
        "gender" => &mut personal.gender,
        "birthday" => &mut personal.birthday,
        "phone" => &mut personal.phone,
        "email" => &mut personal.email,
        "id_number" => &mut personal.id_number,
        _ => &mut personal.address,
    };
    *slot = Some(value);
}

impl Members {
    pub fn new(repo: Arc<dyn MemberRepository>, master: MasterKey, clock: SharedClock) -> Self {
        Self {
            repo,
            master,
            clock,
        }
    }

    /// The tenant's key ring, created on its first use.
    async fn ring(&self, tenant: &str) -> ServiceResult<TenantRing> {
        let stored = self.repo.tenant_keys(tenant).await?;
        if stored.is_empty() {
            let (ring, first) = TenantRing::create(&self.master, tenant).map_err(vault_error)?;
            if self.repo.add_tenant_key(tenant, &first).await? {
                return Ok(ring);
            }
            // Another writer created it first: use theirs.
            let stored = self.repo.tenant_keys(tenant).await?;
            return TenantRing::open(&self.master, tenant, &stored).map_err(vault_error);
        }
        TenantRing::open(&self.master, tenant, &stored).map_err(vault_error)
    }

    /// The blind indexes of the searchable fields; an error names a malformed one.
    fn indexes(&self, tenant: &str, p: &Personal) -> ServiceResult<Vec<(IndexKind, [u8; 32])>> {
        let blind = BlindIndex::for_tenant(&self.master, tenant);
        let mut out = Vec::new();
        let searchable = [
            (IndexKind::Phone, &p.phone),
            (IndexKind::Email, &p.email),
            (IndexKind::IdNumber, &p.id_number),
        ];
        for (kind, value) in searchable {
            let Some(value) = value else { continue };
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

    /// Registers a new member with `input`; DUPLICATE_MEMBER if another member of the tenant
    /// has its phone, email or ID number.
    pub async fn register(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        input: ProfileInput,
    ) -> ServiceResult<Profile> {
        let tenant = tenant.as_str();
        if self.repo.profile(tenant, member.as_str()).await?.is_some() {
            return Err(ServiceError::new(
                ErrorCode::AlreadyExists,
                format!("member {member} is registered already"),
            ));
        }
        let ring = self.ring(tenant).await?;
        let (key, wrapped) = ring.new_member_key(member.as_str()).map_err(vault_error)?;
        let now = self.clock.now();
        let stored = StoredProfile {
            tenant: tenant.into(),
            member_id: member.to_string(),
            sealed: seal_all(&key, &input.personal)?,
            key: Some(wrapped),
            indexes: self.indexes(tenant, &input.personal)?,
            channel: input.channel,
            store: input.store,
            consents: input.consents,
            attributes: input.attributes,
            tags: Default::default(),
            created_at: now,
            updated_at: now,
            erased_at: None,
            version: 1,
        };
        match self.repo.put_profile(&stored, &[]).await? {
            Written::Yes => self.opened(&stored, &key),
            Written::Stale => Err(ServiceError::new(
                ErrorCode::AlreadyExists,
                format!("member {member} is registered already"),
            )),
            Written::Taken(kind, holder) => Err(ServiceError::new(
                ErrorCode::DuplicateMember,
                format!(
                    "member {holder} of this tenant has this {} already",
                    kind.label()
                ),
            )),
        }
    }

    /// The member's profile, masked or not.
    pub async fn profile(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        view: View,
    ) -> ServiceResult<Profile> {
        let stored = self.live(tenant, member).await?;
        let Some(wrapped) = &stored.key else {
            return Err(ServiceError::internal("a live member without its key"));
        };
        let ring = self.ring(tenant.as_str()).await?;
        let key = ring
            .member_key(member.as_str(), wrapped)
            .map_err(vault_error)?;
        let mut profile = self.opened(&stored, &key)?;
        if view == View::Masked {
            profile.personal = masked(&profile.personal);
        }
        Ok(profile)
    }

    fn opened(&self, stored: &StoredProfile, key: &MemberKey) -> ServiceResult<Profile> {
        let mut personal = Personal::default();
        for (name, sealed) in &stored.sealed {
            let value = key.open(name, sealed).map_err(vault_error)?;
            set_field(&mut personal, name, value);
        }
        Ok(Profile {
            member_id: stored.member_id.clone(),
            personal,
            channel: stored.channel.clone(),
            store: stored.store.clone(),
            consents: stored.consents,
            attributes: stored.attributes.clone(),
            tags: stored.tags.clone(),
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            version: stored.version,
        })
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
        self.repo
            .member_by_index(tenant.as_str(), kind, &index)
            .await
    }

    /// Adds and removes tags (a tag added and removed in one call ends up removed); the
    /// profile, masked.
    pub async fn tag(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        add: &[String],
        remove: &[String],
    ) -> ServiceResult<Profile> {
        for tag in add.iter().chain(remove) {
            check_tag(tag)?;
        }
        for _ in 0..8 {
            let mut stored = self.live(tenant, member).await?;
            stored.tags.extend(add.iter().cloned());
            for tag in remove {
                stored.tags.remove(tag);
            }
            if stored.tags.len() > MAX_TAGS {
                return Err(ServiceError::invalid(format!(
                    "a member has at most {MAX_TAGS} tags"
                )));
            }
            stored.updated_at = self.clock.now();
            stored.version += 1;
            if self.repo.put_profile(&stored, &[]).await? == Written::Yes {
                return self.profile(tenant, member, View::Masked).await;
            }
        }
        Err(ServiceError::new(
            ErrorCode::VersionConflict,
            "the member is busy; retry",
        ))
    }

    /// The stored profile of a member, erased or not.
    async fn existing(&self, tenant: &TenantId, member: &MemberId) -> ServiceResult<StoredProfile> {
        self.repo
            .profile(tenant.as_str(), member.as_str())
            .await?
            .ok_or_else(|| {
                ServiceError::new(ErrorCode::MemberNotFound, format!("no member {member}"))
            })
    }

    /// The stored profile of a member that exists and is not erased.
    async fn live(&self, tenant: &TenantId, member: &MemberId) -> ServiceResult<StoredProfile> {
        let stored = self.existing(tenant, member).await?;
        if stored.erased_at.is_some() {
            return Err(ServiceError::new(
                ErrorCode::MemberErased,
                format!("member {member}'s personal data was erased"),
            ));
        }
        Ok(stored)
    }

    /// Adds a key version for the tenant and re-wraps every member key under it; the number
    /// of members re-wrapped. Profiles stay readable throughout.
    pub async fn rotate_tenant_key(&self, tenant: &TenantId) -> ServiceResult<usize> {
        let mut ring = self.ring(tenant.as_str()).await?;
        let added = ring.rotate(&self.master).map_err(vault_error)?;
        if !self.repo.add_tenant_key(tenant.as_str(), &added).await? {
            return Err(ServiceError::new(
                ErrorCode::VersionConflict,
                "the tenant's key is being rotated; retry",
            ));
        }
        let mut rewrapped = 0;
        for mut stored in self.repo.profiles_of(tenant.as_str()).await? {
            let Some(wrapped) = &stored.key else { continue };
            let Some(new) = ring
                .rewrap(&stored.member_id, wrapped)
                .map_err(vault_error)?
            else {
                continue;
            };
            stored.key = Some(new);
            stored.version += 1;
            // A profile changed meanwhile keeps its older wrapping: still readable, and
            // re-wrapped by the next rotation.
            if self.repo.put_profile(&stored, &[]).await? == Written::Yes {
                rewrapped += 1;
            }
        }
        Ok(rewrapped)
    }

    /// Erases the member's personal data: its key, sealed fields and indexes are deleted, so
    /// nothing can read them again; the member id (the ledger's pseudonym) remains.
    pub async fn erase(&self, tenant: &TenantId, member: &MemberId) -> ServiceResult<Timestamp> {
        for _ in 0..8 {
            let mut stored = self.existing(tenant, member).await?;
            if let Some(at) = stored.erased_at {
                return Ok(at);
            }
            let released = std::mem::take(&mut stored.indexes);
            let now = self.clock.now();
            stored.key = None;
            stored.sealed.clear();
            stored.erased_at = Some(now);
            stored.updated_at = now;
            stored.version += 1;
            if self.repo.put_profile(&stored, &released).await? == Written::Yes {
                return Ok(now);
            }
        }
        Err(ServiceError::new(
            ErrorCode::VersionConflict,
            "the member is busy; retry",
        ))
    }
}

/// Tags a member has at most.
const MAX_TAGS: usize = 200;

/// A tag: 1 to 64 lower-case letters, digits, `-`, `_` or `:` (e.g. `vip`, `campaign:2026-11`).
fn check_tag(tag: &str) -> ServiceResult<()> {
    let ok = (1..=64).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(format!(
            "tag {tag:?} is not 1 to 64 lower-case letters, digits, '-', '_' or ':'"
        )))
    }
}

fn seal_all(key: &MemberKey, personal: &Personal) -> ServiceResult<BTreeMap<String, Vec<u8>>> {
    let mut sealed = BTreeMap::new();
    for name in FIELDS {
        if let Some(value) = field(personal, name) {
            sealed.insert(
                name.to_string(),
                key.seal(name, value).map_err(vault_error)?,
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

fn masked(p: &Personal) -> Personal {
    Personal {
        name: p.name.as_deref().map(mask::name),
        gender: p.gender.clone(),
        birthday: p
            .birthday
            .as_ref()
            .map(|b| format!("{}-**-**", b.get(..4).unwrap_or("****"))),
        phone: p.phone.as_deref().map(mask::phone),
        email: p.email.as_deref().map(mask::email),
        id_number: p.id_number.as_deref().map(mask::id_number),
        address: p.address.as_ref().map(|_| "***".to_string()),
    }
}

#[cfg(test)]
mod tests;
