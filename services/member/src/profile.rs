//! A member's profile as the service sees it (personal data in the clear, in memory only),
//! and as it is stored (personal data sealed, plus blind indexes).

use crate::blind::Kind;
use crate::vault::WrappedMemberKey;
use loyalty_common::Timestamp;
use loyalty_common::personal::PersonalData;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
