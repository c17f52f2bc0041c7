//! Keyed blind indexes: finding and de-duplicating members by phone, email or ID number
//! without storing them in the clear. The index of a value is HMAC-SHA256 of its normalised
//! form, under a key derived per tenant from the master key (HKDF), so equal values match
//! within a tenant, nothing matches across tenants, and the index alone reveals nothing
//! without the key. The index key does not rotate with the tenant's data keys (lookups must
//! keep working); changing it means re-indexing every member.

use crate::vault::MasterKey;
use ring::{hkdf, hmac};

/// What an index is of; each kind is normalised and keyed apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Phone,
    Email,
    IdNumber,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Phone => "phone",
            Kind::Email => "email",
            Kind::IdNumber => "id_number",
        }
    }
}

/// The normalised form two spellings of one value share, or None if it is not a value of
/// this kind.
pub fn normalise(kind: Kind, value: &str) -> Option<String> {
    let value = value.trim();
    match kind {
        Kind::Phone => {
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            // Mainland numbers with or without +86 / 0086: the 11 digits.
            let digits = digits
                .strip_prefix("0086")
                .or_else(|| digits.strip_prefix("86").filter(|d| d.len() == 11))
                .unwrap_or(&digits)
                .to_string();
            let allowed = value
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c));
            (allowed && (7..=15).contains(&digits.len())).then_some(digits)
        }
        Kind::Email => {
            let lower = value.to_lowercase();
            let (local, domain) = lower.split_once('@')?;
            let ok = !local.is_empty() && domain.contains('.') && !domain.contains('@');
            ok.then_some(lower)
        }
        Kind::IdNumber => {
            let upper: String = value
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_uppercase();
            let ok = !upper.is_empty()
                && upper.len() <= 32
                && upper.chars().all(|c| c.is_ascii_alphanumeric());
            ok.then_some(upper)
        }
    }
}

/// One tenant's index key.
pub struct BlindIndex {
    key: hmac::Key,
}

struct HmacKeyLen;

impl hkdf::KeyType for HmacKeyLen {
    fn len(&self) -> usize {
        32
    }
}

impl BlindIndex {
    pub fn for_tenant(master: &MasterKey, tenant: &str) -> Self {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"loyalty-member-blind-index-v1");
        let prk = salt.extract(master.raw());
        let info = [tenant.as_bytes()];
        let mut bytes = [0u8; 32];
        // 32 bytes from SHA-256's HKDF cannot fail (the limit is 255 blocks).
        if let Ok(okm) = prk.expand(&info, HmacKeyLen) {
            let _ = okm.fill(&mut bytes);
        }
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        }
    }

    /// The index of `value`, or None if it is not a value of `kind`.
    pub fn index(&self, kind: Kind, value: &str) -> Option<[u8; 32]> {
        let normal = normalise(kind, value)?;
        let mut context = hmac::Context::with_key(&self.key);
        context.update(kind.label().as_bytes());
        context.update(&[0]);
        context.update(normal.as_bytes());
        let tag = context.sign();
        tag.as_ref().try_into().ok()
    }

    /// The index of a birthday's month and day (`MM-DD`), for the birthday sweep. Under the
    /// same key as the other kinds, with a label of its own, so it can equal none of them;
    /// the caller checks that the month and day are a date ([`crate::birthday`]).
    pub fn month_day(&self, month: u32, day: u32) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(b"birthday");
        context.update(&[0]);
        context.update(format!("{month:02}-{day:02}").as_bytes());
        let mut out = [0u8; 32];
        // An HMAC-SHA256 tag is 32 bytes, always.
        out.copy_from_slice(context.sign().as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_value_share_an_index_within_a_tenant_only() {
        let master = MasterKey::generate().unwrap().0;
        let acme = BlindIndex::for_tenant(&master, "acme");
        let phone = acme.index(Kind::Phone, "138 1234 5678").unwrap();
        assert_eq!(acme.index(Kind::Phone, "+86 138-1234-5678"), Some(phone));
        assert_eq!(acme.index(Kind::Phone, "008613812345678"), Some(phone));
        assert_ne!(acme.index(Kind::Phone, "13812345679"), Some(phone));
        let email = acme.index(Kind::Email, " Alice@Example.CN ").unwrap();
        assert_eq!(acme.index(Kind::Email, "alice@example.cn"), Some(email));
        let id = acme.index(Kind::IdNumber, "11010119900307123x").unwrap();
        assert_eq!(
            acme.index(Kind::IdNumber, "1101 0119 9003 0712 3X"),
            Some(id)
        );

        let globex = BlindIndex::for_tenant(&master, "globex");
        assert_ne!(globex.index(Kind::Phone, "13812345678"), Some(phone));
        let other = BlindIndex::for_tenant(&MasterKey::generate().unwrap().0, "acme");
        assert_ne!(other.index(Kind::Phone, "13812345678"), Some(phone));
        // Kinds are keyed apart: the same text as an ID number is another index.
        assert_ne!(acme.index(Kind::IdNumber, "13812345678"), Some(phone));
    }

    #[test]
    fn a_month_day_matches_within_its_tenant_and_no_other_kind() {
        let master = MasterKey::generate().unwrap().0;
        let acme = BlindIndex::for_tenant(&master, "acme");
        let march_7 = acme.month_day(3, 7);
        assert_eq!(acme.month_day(3, 7), march_7);
        assert_ne!(acme.month_day(7, 3), march_7);
        let globex = BlindIndex::for_tenant(&master, "globex");
        assert_ne!(globex.month_day(3, 7), march_7);
        assert_ne!(acme.index(Kind::IdNumber, "0307"), Some(march_7));
    }

    #[test]
    fn malformed_values_have_no_index() {
        let master = MasterKey::generate().unwrap().0;
        let acme = BlindIndex::for_tenant(&master, "acme");
        for phone in ["", "12ab", "123", "1381234567812345678", "138/1234"] {
            assert!(acme.index(Kind::Phone, phone).is_none(), "{phone:?}");
        }
        for email in [
            "",
            "alice",
            "alice@",
            "@example.cn",
            "a@b@c.cn",
            "a@localhost",
        ] {
            assert!(acme.index(Kind::Email, email).is_none(), "{email:?}");
        }
        assert!(acme.index(Kind::IdNumber, "11010119900307-123X").is_none());
    }
}
