//! A member's profile as the service sees it (personal data in the clear, in memory only),
//! and as it is stored (personal data sealed, plus blind indexes).

use crate::blind::Kind;
use crate::vault::WrappedMemberKey;
use loyalty_common::Timestamp;
use loyalty_common::personal::PersonalData;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The personal fields: sealed at rest, masked unless the caller may unmask.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Personal {
    pub name: Option<PersonalData>,
    pub gender: Option<PersonalData>,
    /// `YYYY-MM-DD`.
    pub birthday: Option<PersonalData>,
    pub phone: Option<PersonalData>,
    pub email: Option<PersonalData>,
    pub id_number: Option<PersonalData>,
    pub address: Option<PersonalData>,
}

impl Personal {
    /// The personal fields' names, as sealed and as the API names them.
    pub const FIELDS: [&'static str; 7] = [
        "name",
        "gender",
        "birthday",
        "phone",
        "email",
        "id_number",
        "address",
    ];

    pub fn get(&self, name: &str) -> Option<&PersonalData> {
        match name {
            "name" => self.name.as_ref(),
            "gender" => self.gender.as_ref(),
            "birthday" => self.birthday.as_ref(),
            "phone" => self.phone.as_ref(),
            "email" => self.email.as_ref(),
            "id_number" => self.id_number.as_ref(),
            "address" => self.address.as_ref(),
            _ => None,
        }
    }

    /// The slot of a field by name; None for a name that is not a personal field.
    pub fn slot(&mut self, name: &str) -> Option<&mut Option<PersonalData>> {
        Some(match name {
            "name" => &mut self.name,
            "gender" => &mut self.gender,
            "birthday" => &mut self.birthday,
            "phone" => &mut self.phone,
            "email" => &mut self.email,
            "id_number" => &mut self.id_number,
            "address" => &mut self.address,
            _ => return None,
        })
    }

    /// The fields as shown to a caller without the unmask permission.
    pub fn masked(&self) -> Personal {
        use crate::mask;
        let masked = |value: &Option<PersonalData>, mask: fn(&str) -> String| {
            value.as_ref().map(|v| PersonalData::new(mask(v.expose())))
        };
        Personal {
            name: masked(&self.name, mask::name),
            gender: self.gender.clone(),
            birthday: masked(&self.birthday, |b| {
                format!("{}-**-**", b.get(..4).unwrap_or("****"))
            }),
            phone: masked(&self.phone, mask::phone),
            email: masked(&self.email, mask::email),
            id_number: masked(&self.id_number, mask::id_number),
            address: masked(&self.address, |_| "***".to_string()),
        }
    }
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
    pub tier: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
}

/// A profile as stored: the personal fields sealed by the member's key, which is stored
/// wrapped by the tenant's key; None for both once the member is erased. What is not
/// personal (tags, consents, spend, ...) is in the member's [`crate::facts::MemberFacts`].
/// Stored in postcard (both stores), which its `Deserialize` relies on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredProfile {
    pub tenant: String,
    pub member_id: String,
    /// Field name → sealed value.
    pub sealed: BTreeMap<String, Vec<u8>>,
    pub key: Option<WrappedMemberKey>,
    /// The blind indexes this profile holds (each claimed for it alone in the tenant).
    pub indexes: Vec<(IndexKind, [u8; 32])>,
    pub updated_at: Timestamp,
    pub erased_at: Option<Timestamp>,
    /// The member this one was merged into, while the merge stands.
    pub merged_into: Option<String>,
    pub version: u64,
    /// The birthday index row this profile holds: the keyed hash of its birthday's month
    /// and day ([`crate::birthday`]). None without a birthday, once erased or merged away,
    /// and in profiles stored before the index existed until the tenant's index is rebuilt.
    /// It must stay the last field (see the `Deserialize` below).
    pub birthday: Option<[u8; 32]>,
}

/// [`StoredProfile`]'s fields before `birthday`, in their order.
#[derive(Deserialize)]
struct FieldsBeforeBirthday {
    tenant: String,
    member_id: String,
    sealed: BTreeMap<String, Vec<u8>>,
    key: Option<WrappedMemberKey>,
    indexes: Vec<(IndexKind, [u8; 32])>,
    updated_at: Timestamp,
    erased_at: Option<Timestamp>,
    merged_into: Option<String>,
    version: u64,
}

/// Postcard writes a struct as its fields one after the other, without names or a count, so
/// a row stored before `birthday` existed is the same bytes as the fields before it, ending
/// where the birthday would start. It is read as those fields and then a birthday if the row
/// has one: rows stored before keep reading, with no migration of the stores.
impl<'de> Deserialize<'de> for StoredProfile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Row;

        impl<'de> Visitor<'de> for Row {
            type Value = StoredProfile;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a stored profile")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StoredProfile, A::Error> {
                let p: FieldsBeforeBirthday = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                // An error here is the end of an older row: no birthday index.
                let birthday = seq.next_element::<Option<[u8; 32]>>().ok().flatten();
                Ok(StoredProfile {
                    tenant: p.tenant,
                    member_id: p.member_id,
                    sealed: p.sealed,
                    key: p.key,
                    indexes: p.indexes,
                    updated_at: p.updated_at,
                    erased_at: p.erased_at,
                    merged_into: p.merged_into,
                    version: p.version,
                    birthday: birthday.flatten(),
                })
            }
        }

        deserializer.deserialize_tuple(2, Row)
    }
}

/// [`Kind`] as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(birthday: Option<[u8; 32]>) -> StoredProfile {
        StoredProfile {
            tenant: "acme".into(),
            member_id: "m1".into(),
            sealed: [("name".to_string(), vec![1, 2, 3])].into_iter().collect(),
            key: None,
            indexes: vec![(IndexKind::Phone, [7; 32])],
            updated_at: Timestamp(1_800_000_000_000),
            erased_at: None,
            merged_into: Some("m0".into()),
            version: 3,
            birthday,
        }
    }

    #[test]
    fn a_profile_stored_before_the_birthday_index_still_reads() {
        // The profile as it was written before `birthday` existed.
        #[derive(Serialize)]
        struct Before {
            tenant: String,
            member_id: String,
            sealed: BTreeMap<String, Vec<u8>>,
            key: Option<WrappedMemberKey>,
            indexes: Vec<(IndexKind, [u8; 32])>,
            updated_at: Timestamp,
            erased_at: Option<Timestamp>,
            merged_into: Option<String>,
            version: u64,
        }
        let now = stored(None);
        let before = Before {
            tenant: now.tenant.clone(),
            member_id: now.member_id.clone(),
            sealed: now.sealed.clone(),
            key: None,
            indexes: now.indexes.clone(),
            updated_at: now.updated_at,
            erased_at: None,
            merged_into: now.merged_into.clone(),
            version: now.version,
        };
        let bytes = postcard::to_allocvec(&before).unwrap();
        assert_eq!(postcard::from_bytes::<StoredProfile>(&bytes).unwrap(), now);
        for profile in [stored(None), stored(Some([9; 32]))] {
            let bytes = postcard::to_allocvec(&profile).unwrap();
            assert_eq!(
                postcard::from_bytes::<StoredProfile>(&bytes).unwrap(),
                profile
            );
        }
        // A row cut short before its earlier fields end is still an error.
        let bytes = postcard::to_allocvec(&stored(None)).unwrap();
        assert!(postcard::from_bytes::<StoredProfile>(&bytes[..bytes.len() - 3]).is_err());
    }

    #[test]
    fn a_profile_printed_by_debug_shows_no_personal_data() {
        let personal = Personal {
            name: Some("王建国".into()),
            phone: Some("13812345678".into()),
            email: Some("a@example.cn".into()),
            id_number: Some("11010519491231002X".into()),
            address: Some("建国路".into()),
            ..Personal::default()
        };
        let printed = format!("{personal:?} {:?}", personal.masked());
        for value in ["王", "1381", "5678", "example", "1101", "建国路"] {
            assert!(!printed.contains(value), "{value} in {printed}");
        }
    }
}
