//! A member's profile as the service sees it (personal data in the clear, in memory only),
//! and as it is stored (personal data sealed, plus blind indexes).

use crate::blind::Kind;
use crate::vault::WrappedMemberKey;
use loyalty_common::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The personal fields: sealed at rest, masked unless the caller may unmask.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Personal {
    pub name: Option<String>,
    pub gender: Option<String>,
    /// `YYYY-MM-DD`.
    pub birthday: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub id_number: Option<String>,
    pub address: Option<String>,
}

/// Marketing consent by channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consents {
    pub sms: bool,
    pub email: bool,
    pub app: bool,
}

/// A profile in the clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub member_id: String,
    pub personal: Personal,
    pub channel: Option<String>,
    pub store: Option<String>,
    pub consents: Consents,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeSet<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
}

/// A profile as stored: the personal fields sealed by the member's key, which is stored
/// wrapped by the tenant's key; None for both once the member is erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredProfile {
    pub tenant: String,
    pub member_id: String,
    /// Field name → sealed value.
    pub sealed: BTreeMap<String, Vec<u8>>,
    pub key: Option<WrappedMemberKey>,
    /// The blind indexes this profile holds (each claimed for it alone in the tenant).
    pub indexes: Vec<(IndexKind, [u8; 32])>,
    pub channel: Option<String>,
    pub store: Option<String>,
    pub consents: Consents,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeSet<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub erased_at: Option<Timestamp>,
    pub version: u64,
}

/// [`Kind`] as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IndexKind {
    Phone,
    Email,
    IdNumber,
}

impl From<IndexKind> for Kind {
    fn from(kind: IndexKind) -> Self {
        match kind {
            IndexKind::Phone => Kind::Phone,
            IndexKind::Email => Kind::Email,
            IndexKind::IdNumber => Kind::IdNumber,
        }
    }
}

impl IndexKind {
    pub fn label(self) -> &'static str {
        match self {
            IndexKind::Phone => "phone",
            IndexKind::Email => "email",
            IndexKind::IdNumber => "id_number",
        }
    }
}
