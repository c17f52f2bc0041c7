//! What the identity service stores: tenants with their brands, stores and security policy;
//! staff accounts; login sessions with their current refresh token; API keys. Each is one
//! partition with a version, written by conditional writes, as ScyllaDB allows.

use crate::opaque::SecretHash;
use crate::policy::{LoginFailures, SecurityPolicy};
use loyalty_common::ServiceError;
use loyalty_common::Timestamp;
use loyalty_common::ids::{ApiKeyId, BrandId, SessionId, StaffId, StoreId, TenantId};
use serde::{Deserialize, Serialize};

/// The domain of the platform's own staff (casbin domain `*`).
pub const PLATFORM: &str = "*";

/// A retail chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub brands: Vec<Brand>,
    pub stores: Vec<Store>,
    pub policy: SecurityPolicy,
    /// The IANA time zone its reports and console dates use (e.g. `Asia/Shanghai`); unset,
    /// UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
    pub created_at: Timestamp,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Brand {
    pub id: BrandId,
    pub name: String,
    /// Deactivated: kept (its stores and history name it), offered for nothing new.
    #[serde(default)]
    pub inactive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    pub id: StoreId,
    pub name: String,
    pub brand: Option<BrandId>,
    /// Deactivated (closed): kept, since members, orders and staff roles name it.
    #[serde(default)]
    pub inactive: bool,
}

/// A login name: 1 to 64 characters, lower-cased; letters, digits and `. _ - @ +`, so an
/// email address works.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub fn parse(value: &str) -> Result<Self, ServiceError> {
        let value = value.trim().to_lowercase();
        let ok = !value.is_empty()
            && value.chars().count() <= 64
            && value
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'));
        if !ok {
            return Err(ServiceError::invalid(
                "username must be 1 to 64 letters, digits or . _ - @ +",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = ServiceError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Username> for String {
    fn from(u: Username) -> String {
        u.0
    }
}

/// A staff member's second factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpEnrolment {
    pub secret: Vec<u8>,
    /// Confirmed by a first valid code; until then logins do not ask for it.
    pub confirmed: bool,
    /// The last step whose code was accepted: no code is accepted twice.
    pub last_step: Option<u64>,
}

/// A staff account of a tenant, or of the platform (`tenant` = `*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staff {
    pub id: StaffId,
    /// A tenant id, or [`PLATFORM`].
    pub tenant: String,
    pub username: Username,
    pub display_name: String,
    pub password_hash: String,
    /// Set by an administrator's reset: the next login must choose a new password.
    pub must_change_password: bool,
    pub totp: Option<TotpEnrolment>,
    pub failures: LoginFailures,
    pub disabled: bool,
    /// When an administrator last deactivated the account: sessions begun until then stay
    /// ended after a reactivation.
    #[serde(default)]
    pub sessions_ended_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub version: u64,
}

impl Staff {
    /// The casbin subject.
    pub fn subject(&self) -> String {
        subject_of_staff(self.id)
    }
}

pub fn subject_of_staff(id: StaffId) -> String {
    format!("staff:{id}")
}

pub fn subject_of_key(id: ApiKeyId) -> String {
    format!("key:{id}")
}

/// A login session: the refresh-token family. Only the newest refresh token is valid; the
/// hashes of the ones it replaced are kept, so presenting one again (a stolen token) is
/// recognised and ends the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub staff: StaffId,
    pub tenant: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub refresh: SecretHash,
    /// Replaced refresh tokens, newest last (bounded).
    pub replaced: Vec<SecretHash>,
    pub version: u64,
}

impl Session {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// A partner system's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant: TenantId,
    pub name: String,
    pub hash: SecretHash,
    /// The roles the key holds in its tenant (granted in casbin to `key:<id>`).
    pub roles: Vec<String>,
    pub created_at: Timestamp,
    pub created_by: String,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub version: u64,
}

impl ApiKey {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_cased_and_checked() {
        assert_eq!(
            Username::parse(" Ann.Lee@Acme.cn ").unwrap().as_str(),
            "ann.lee@acme.cn"
        );
        assert!(Username::parse("").is_err());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
        assert!(Username::parse("王小明").is_ok());
    }
}
