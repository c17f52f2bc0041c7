//! Administration by those whose roles allow it: tenants with brands, stores and policy; staff
//! accounts (creation, password reset, unlock, second factor); roles; API keys. Every act is
//! authorized in the domain it touches and recorded in that tenant's audit log.

use super::{IdentityService, Principal};
use crate::audit::Outcome;
use crate::changes::Change;
use crate::model::{
    ApiKey, Brand, PLATFORM, Staff, Store, Tenant, TotpEnrolment, Username, subject_of_key,
    subject_of_staff,
};
use crate::opaque::{self, Kind};
use crate::permissions::{self, Permission};
use crate::policy::{LoginFailures, SecurityPolicy};
use crate::rbac::built_in_roles;
use crate::store::Applied;
use crate::totp::TotpSecret;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{ApiKeyId, BrandId, StaffId, StoreId, TenantId};
use loyalty_common::{ServiceError, Timestamp};

/// Which way a role changes hands.
#[derive(Clone, Copy)]
enum RoleChange {
    Grant,
    Revoke,
}

/// A new staff account: what to hand its owner once.
#[derive(Debug, Clone)]
pub struct CreatedStaff {
    pub id: StaffId,
    /// Set when no password was given: a generated one, to be changed at first login.
    pub initial_password: Option<String>,
    /// Set when the tenant requires a second factor: the `otpauth://` URI to scan.
    pub totp_uri: Option<String>,
}

/// What an administrator gives for a new staff account.
#[derive(Debug, Clone, Default)]
pub struct NewStaff {
    pub username: String,
    pub display_name: String,
    /// `(role, domain)` pairs: the domain is the tenant or one of its stores.
    pub roles: Vec<(String, String)>,
    /// None: generate one, to be changed at first login.
    pub password: Option<String>,
}

impl NewStaff {
    pub fn new(username: &str, roles: &[(&str, &str)]) -> Self {
        Self {
            username: username.into(),
            display_name: username.into(),
            roles: roles
                .iter()
                .map(|(r, d)| (r.to_string(), d.to_string()))
                .collect(),
            password: None,
        }
    }

    pub fn with_password(mut self, password: &str) -> Self {
        self.password = Some(password.into());
        self
    }
}

/// A new API key: the text is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub key: String,
}

fn already_exists(what: &str) -> ServiceError {
    ServiceError::new(ErrorCode::AlreadyExists, format!("{what} exists already"))
}

fn not_found(what: &str) -> ServiceError {
    ServiceError::new(ErrorCode::NotFound, format!("no such {what}"))
}

/// A password nobody chose: 20 characters of the unambiguous base32 alphabet.
pub(crate) fn generated_password() -> String {
    let secret = TotpSecret::generate();
    base32_lower(&secret.as_bytes()[..12])
}

fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    bytes
        .iter()
        .flat_map(|b| [ALPHABET[(b >> 3) as usize], ALPHABET[(b & 0x1f) as usize]])
        .map(char::from)
        .take(20)
        .collect()
}

mod api_keys;
mod listing;
mod roles;
mod staff;
mod tenants;
mod updates;

pub use listing::{RoleView, StaffView};
pub use updates::{PlaceUpdate, TenantUpdate};

impl IdentityService {
    /// The platform's first administrator, created on the first start only: with `password`
    /// when given (from the environment), else a generated one, returned to print once.
    /// Returns None when platform staff exist already.
    pub async fn ensure_platform_admin(
        &self,
        username: &str,
        password: Option<&str>,
    ) -> ServiceResult<Option<String>> {
        if !self.ports.staff.staff_of(PLATFORM).await?.is_empty() {
            return Ok(None);
        }
        let mut new = NewStaff::new(username, &[("platform_admin", PLATFORM)]);
        new.display_name = "Platform administrator".into();
        new.password = password.map(String::from);
        let created = self
            .create_staff(&Principal::system(), PLATFORM, new, "bootstrap")
            .await?;
        Ok(Some(created.initial_password.unwrap_or_default()))
    }

    /// The subject a staff account has in the authorizer.
    pub fn staff_subject(id: StaffId) -> String {
        subject_of_staff(id)
    }

    /// Audit records of `tenant` from sequence `from` on.
    pub async fn audit_records(
        &self,
        principal: &Principal,
        tenant: &str,
        from: u64,
        limit: usize,
        request_id: &str,
    ) -> ServiceResult<Vec<crate::audit::AuditRecord>> {
        self.authorize(principal, tenant, permissions::AUDIT_READ, request_id)
            .await?;
        self.audit.records(tenant, from, limit.min(1000)).await
    }

    /// Only for brand and store ids given by a caller: parsed here so errors read well.
    pub fn parse_store(id: &str, name: &str, brand: Option<&str>) -> ServiceResult<Store> {
        Ok(Store {
            id: StoreId::parse(id)?,
            name: name.into(),
            brand: brand.map(BrandId::parse).transpose()?,
            inactive: false,
        })
    }
}
