//! Personal data sealed at rest, with envelope keys in three layers:
//!
//! - the **master key** (32 bytes, kept outside the store) wraps each tenant's keys;
//! - each **tenant key ring** holds numbered versions; the newest wraps new member keys;
//! - each **member key** (random, one per member) seals that member's fields.
//!
//! Rotating a tenant's key adds a version and re-wraps member keys ([`TenantRing::rewrap`]),
//! a few dozen bytes per member, while every sealed field stays as it is: no downtime, and
//! no re-encryption of profiles. Erasing a member deletes its wrapped key: its fields can no
//! longer be opened by anyone (crypto-shredding), while the ledger keeps its pseudonymous id.
//!
//! AES-256-GCM (ring) with random 96-bit nonces. Every sealed value names what it belongs to
//! as associated data (tenant, member, field; tenant and member for a wrapped key), so a value
//! copied to another member, field or tenant does not open.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a key or value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("a key must be 32 bytes")]
    KeyLength,
    #[error("the system's random source failed")]
    Random,
    #[error("the value does not open with this key: altered, or not this one's")]
    Unreadable,
    #[error("tenant key version {0} is not in the ring")]
    UnknownVersion(u32),
}

type Result<T> = std::result::Result<T, VaultError>;

/// Random bytes for keys and nonces from the thread's CSPRNG (ChaCha, seeded and reseeded
/// from the operating system): one system call per member cost a bulk import about 3% of
/// its time, for no gain in strength.
fn random<const N: usize>() -> Result<[u8; N]> {
    use rand::TryRngCore;
    let mut bytes = [0u8; N];
    rand::rngs::ThreadRng::default()
        .try_fill_bytes(&mut bytes)
        .map_err(|_| VaultError::Random)?;
    Ok(bytes)
}

fn aead_key(bytes: &[u8]) -> Result<LessSafeKey> {
    let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| VaultError::KeyLength)?;
    Ok(LessSafeKey::new(key))
}

/// Seals `plaintext` under `key`: nonce, then ciphertext and tag.
fn seal(key: &LessSafeKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let nonce = random::<NONCE_LEN>()?;
    let mut out = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut out,
    )
    .map_err(|_| VaultError::Unreadable)?;
    Ok([nonce.as_slice(), &out].concat())
}

fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return Err(VaultError::Unreadable);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Unreadable)?;
    let mut body = body.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(aad), &mut body)
        .map_err(|_| VaultError::Unreadable)?;
    Ok(plain.to_vec())
}

/// Associated data: the parts, each with its length, so no two lists read the same.
fn aad(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// The key that wraps every tenant's keys.
pub struct MasterKey {
    key: LessSafeKey,
    raw: [u8; 32],
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| VaultError::KeyLength)?;
        Ok(Self {
            key: aead_key(&raw)?,
            raw,
        })
    }

    /// A new random master key (first start); its bytes, to keep outside the store.
    pub fn generate() -> Result<(Self, [u8; 32])> {
        let raw = random::<32>()?;
        Ok((Self::from_bytes(&raw)?, raw))
    }

    /// The secret the blind indexes are derived from ([`crate::blind`]).
    pub(crate) fn raw(&self) -> &[u8; 32] {
        &self.raw
    }
}

/// A tenant key as stored: its version and its bytes sealed by the master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTenantKey {
    pub version: u32,
    pub sealed: Vec<u8>,
}

/// A member key as stored: sealed by one version of its tenant's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedMemberKey {
    pub tenant_version: u32,
    pub sealed: Vec<u8>,
}

/// One tenant's key versions, opened.
pub struct TenantRing {
    tenant: String,
    keys: BTreeMap<u32, LessSafeKey>,
}

impl TenantRing {
    /// A new ring with version 1, and that version as stored.
    pub fn create(master: &MasterKey, tenant: &str) -> Result<(Self, StoredTenantKey)> {
        let mut ring = Self {
            tenant: tenant.into(),
            keys: BTreeMap::new(),
        };
        let stored = ring.rotate(master)?;
        Ok((ring, stored))
    }

    /// The ring from its stored versions.
    pub fn open(master: &MasterKey, tenant: &str, stored: &[StoredTenantKey]) -> Result<Self> {
        let mut keys = BTreeMap::new();
        for key in stored {
            let aad = aad(&["tenant-key", tenant, &key.version.to_string()]);
            let raw = open(&master.key, &aad, &key.sealed)?;
            keys.insert(key.version, aead_key(&raw)?);
        }
        Ok(Self {
            tenant: tenant.into(),
            keys,
        })
    }

    /// The version new member keys are wrapped with.
    pub fn current(&self) -> u32 {
        self.keys.keys().next_back().copied().unwrap_or(0)
    }

    /// Adds a new version (which wraps new member keys from now on); it, as stored.
    pub fn rotate(&mut self, master: &MasterKey) -> Result<StoredTenantKey> {
        let version = self.current() + 1;
        let raw = random::<32>()?;
        let aad = aad(&["tenant-key", &self.tenant, &version.to_string()]);
        let sealed = seal(&master.key, &aad, &raw)?;
        self.keys.insert(version, aead_key(&raw)?);
        Ok(StoredTenantKey { version, sealed })
    }

    /// A new key for `member`, and it wrapped for storage.
    pub fn new_member_key(&self, member: &str) -> Result<(MemberKey, WrappedMemberKey)> {
        let raw = random::<32>()?;
        let wrapped = self.wrap(member, &raw)?;
        Ok((MemberKey::new(&self.tenant, member, &raw)?, wrapped))
    }

    fn wrap(&self, member: &str, raw: &[u8; 32]) -> Result<WrappedMemberKey> {
        let version = self.current();
        let key = self
            .keys
            .get(&version)
            .ok_or(VaultError::UnknownVersion(version))?;
        let aad = aad(&["member-key", &self.tenant, member, &version.to_string()]);
        Ok(WrappedMemberKey {
            tenant_version: version,
            sealed: seal(key, &aad, raw)?,
        })
    }

    fn unwrap_raw(&self, member: &str, wrapped: &WrappedMemberKey) -> Result<Vec<u8>> {
        let version = wrapped.tenant_version;
        let key = self
            .keys
            .get(&version)
            .ok_or(VaultError::UnknownVersion(version))?;
        let aad = aad(&["member-key", &self.tenant, member, &version.to_string()]);
        open(key, &aad, &wrapped.sealed)
    }

    /// `member`'s key, from its stored form.
    pub fn member_key(&self, member: &str, wrapped: &WrappedMemberKey) -> Result<MemberKey> {
        let raw = self.unwrap_raw(member, wrapped)?;
        MemberKey::new(&self.tenant, member, &raw)
    }

    /// The member key wrapped by the current version, if it is wrapped by an older one (after
    /// a rotation); None if it is current already.
    pub fn rewrap(
        &self,
        member: &str,
        wrapped: &WrappedMemberKey,
    ) -> Result<Option<WrappedMemberKey>> {
        if wrapped.tenant_version == self.current() {
            return Ok(None);
        }
        let raw: [u8; 32] = self
            .unwrap_raw(member, wrapped)?
            .try_into()
            .map_err(|_| VaultError::KeyLength)?;
        self.wrap(member, &raw).map(Some)
    }
}

/// One member's key, opened: seals and opens that member's fields.
pub struct MemberKey {
    key: LessSafeKey,
    tenant: String,
    member: String,
}

impl MemberKey {
    fn new(tenant: &str, member: &str, raw: &[u8]) -> Result<Self> {
        Ok(Self {
            key: aead_key(raw)?,
            tenant: tenant.into(),
            member: member.into(),
        })
    }

    /// `value` of `field` (e.g. `phone`), sealed.
    pub fn seal(&self, field: &str, value: &str) -> Result<Vec<u8>> {
        let aad = aad(&["field", &self.tenant, &self.member, field]);
        seal(&self.key, &aad, value.as_bytes())
    }

    /// A sealed value of `field`, opened.
    pub fn open(&self, field: &str, sealed: &[u8]) -> Result<String> {
        let aad = aad(&["field", &self.tenant, &self.member, field]);
        let plain = open(&self.key, &aad, sealed)?;
        String::from_utf8(plain).map_err(|_| VaultError::Unreadable)
    }
}

#[cfg(test)]
mod tests;
