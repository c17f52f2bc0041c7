//! Typed identifiers, parsed at the edge so the domain never sees an unchecked string.

use crate::error::ServiceError;
use serde::{Deserialize, Serialize};
use std::fmt;

fn check_token(kind: &str, value: &str, max: usize) -> Result<(), ServiceError> {
    if value.is_empty() || value.len() > max {
        return Err(ServiceError::invalid(format!(
            "{kind} must be 1 to {max} characters"
        )));
    }
    let ok = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(ServiceError::invalid(format!(
            "{kind} may contain only letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and checks the identifier.
            pub fn parse(value: impl Into<String>) -> Result<Self, ServiceError> {
                let value = value.into();
                check_token($kind, &value, $max)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ServiceError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

token_id!(
    /// A tenant: one retail chain.
    TenantId, "tenant_id", 64
);
token_id!(
    /// A member, as the tenant's systems know them.
    MemberId, "member_id", 64
);
token_id!(
    /// A client-chosen key that makes a write safe to retry.
    IdempotencyKey, "idempotency_key", 128
);
token_id!(
    /// A brand of a tenant (a chain may run several).
    BrandId, "brand_id", 64
);
token_id!(
    /// A store (shop, outlet) of a tenant.
    StoreId, "store_id", 64
);

macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub ulid::Ulid);

        // Text in human-readable formats (JSON), 16 big-endian bytes in binary ones: stored rows
        // stay small and their byte order is the id's time order.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(&self.0)
                } else {
                    s.serialize_bytes(&self.to_bytes())
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
                    ulid::Ulid::from_string(&text)
                        .map(Self)
                        .map_err(serde::de::Error::custom)
                } else {
                    let bytes = <serde_bytes_array::Array16>::deserialize(d)?;
                    Ok(Self(ulid::Ulid::from_bytes(bytes.0)))
                }
            }
        }

        impl $name {
            pub fn parse(value: &str) -> Result<Self, ServiceError> {
                ulid::Ulid::from_string(value)
                    .map(Self)
                    .map_err(|_| ServiceError::invalid(concat!($kind, " is not a valid id")))
            }
        }

        impl $name {
            /// The id as 16 big-endian bytes: sorting the bytes sorts by creation time.
            pub fn to_bytes(self) -> [u8; 16] {
                self.0.to_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

/// Deserialises the 16 bytes of a binary-encoded ULID.
mod serde_bytes_array {
    use serde::de::{Deserialize, Deserializer, Error, Visitor};
    use std::fmt;

    pub struct Array16(pub [u8; 16]);

    impl<'de> Deserialize<'de> for Array16 {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Bytes16;
            impl Visitor<'_> for Bytes16 {
                type Value = Array16;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("16 bytes")
                }
                fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Array16, E> {
                    v.try_into()
                        .map(Array16)
                        .map_err(|_| E::invalid_length(v.len(), &self))
                }
            }
            d.deserialize_bytes(Bytes16)
        }
    }
}

ulid_id!(
    /// A ledger entry. ULIDs sort by creation time, which orders history.
    EntryId, "entry_id"
);
ulid_id!(
    /// A redemption hold.
    HoldId, "hold_id"
);
ulid_id!(
    /// A staff account.
    StaffId, "staff_id"
);
ulid_id!(
    /// An API key of a partner system.
    ApiKeyId, "api_key_id"
);
ulid_id!(
    /// A login session: one refresh-token family and the access tokens issued in it.
    SessionId, "session_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_reject_bad_input() {
        assert!(MemberId::parse("m-1_a.b").is_ok());
        assert!(MemberId::parse("").is_err());
        assert!(MemberId::parse("a b").is_err());
        assert!(MemberId::parse("x".repeat(65)).is_err());
        assert!(TenantId::parse("acme/../x").is_err());
    }

    #[test]
    fn ulid_ids_are_text_in_json_and_bytes_in_binary_formats() {
        let id = EntryId(ulid::Ulid::new());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<EntryId>(&json).unwrap(), id);
        let binary = postcard::to_stdvec(&id).unwrap();
        assert_eq!(binary.len(), 17, "a length byte and 16 bytes");
        assert_eq!(postcard::from_bytes::<EntryId>(&binary).unwrap(), id);
        assert!(postcard::from_bytes::<EntryId>(&[3, 1, 2, 3]).is_err());
    }

    #[test]
    fn ulid_ids_parse() {
        let id = EntryId(ulid::Ulid::new());
        assert_eq!(EntryId::parse(&id.to_string()).unwrap(), id);
        assert!(EntryId::parse("nope").is_err());
    }
}
