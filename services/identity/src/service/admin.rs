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

impl IdentityService {
    /// Creates a tenant (the platform's own staff only).
    pub async fn create_tenant(
        &self,
        principal: &Principal,
        id: &TenantId,
        name: &str,
        request_id: &str,
    ) -> ServiceResult<Tenant> {
        self.authorize(
            principal,
            id.as_str(),
            permissions::TENANT_WRITE,
            request_id,
        )
        .await?;
        let tenant = Tenant {
            id: id.clone(),
            name: name.into(),
            brands: Vec::new(),
            stores: Vec::new(),
            policy: SecurityPolicy::default(),
            created_at: self.now(),
            version: 1,
        };
        if self.ports.tenants.put_tenant(&tenant).await? == Applied::Conflict {
            return Err(already_exists(&format!("tenant {id}")));
        }
        let target = format!("tenant:{id}");
        self.record(
            principal,
            id.as_str(),
            "identity.tenant.create",
            &target,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(tenant)
    }

    pub async fn tenant(
        &self,
        principal: &Principal,
        id: &TenantId,
        request_id: &str,
    ) -> ServiceResult<Tenant> {
        self.authorize(principal, id.as_str(), permissions::TENANT_READ, request_id)
            .await?;
        self.ports
            .tenants
            .tenant(id)
            .await?
            .ok_or_else(|| not_found("tenant"))
    }

    /// Changes a tenant with `change`, re-reading and retrying if another write came first.
    async fn change_tenant(
        &self,
        id: &TenantId,
        change: impl Fn(&mut Tenant) -> ServiceResult<()>,
    ) -> ServiceResult<Tenant> {
        for _ in 0..8 {
            let mut tenant = self
                .ports
                .tenants
                .tenant(id)
                .await?
                .ok_or_else(|| not_found("tenant"))?;
            change(&mut tenant)?;
            tenant.version += 1;
            if self.ports.tenants.put_tenant(&tenant).await? == Applied::Yes {
                return Ok(tenant);
            }
        }
        Err(ServiceError::new(
            ErrorCode::VersionConflict,
            "the tenant is busy; retry",
        ))
    }

    pub async fn add_brand(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        brand: Brand,
        request_id: &str,
    ) -> ServiceResult<Tenant> {
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::STORES_WRITE,
            request_id,
        )
        .await?;
        let target = format!("brand:{tenant}/{}", brand.id);
        let updated = self
            .change_tenant(tenant, |t| {
                if t.brands.iter().any(|b| b.id == brand.id) {
                    return Err(already_exists(&format!("brand {}", brand.id)));
                }
                t.brands.push(brand.clone());
                Ok(())
            })
            .await?;
        self.record(
            principal,
            tenant.as_str(),
            "identity.brand.create",
            &target,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(updated)
    }

    pub async fn add_store(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        store: Store,
        request_id: &str,
    ) -> ServiceResult<Tenant> {
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::STORES_WRITE,
            request_id,
        )
        .await?;
        let target = format!("store:{tenant}/{}", store.id);
        let updated = self
            .change_tenant(tenant, |t| {
                if t.stores.iter().any(|s| s.id == store.id) {
                    return Err(already_exists(&format!("store {}", store.id)));
                }
                if let Some(brand) = &store.brand
                    && !t.brands.iter().any(|b| &b.id == brand)
                {
                    return Err(not_found(&format!("brand {brand}")));
                }
                t.stores.push(store.clone());
                Ok(())
            })
            .await?;
        self.record(
            principal,
            tenant.as_str(),
            "identity.store.create",
            &target,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(updated)
    }

    pub async fn set_policy(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        policy: SecurityPolicy,
        request_id: &str,
    ) -> ServiceResult<Tenant> {
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::POLICY_WRITE,
            request_id,
        )
        .await?;
        let updated = self
            .change_tenant(tenant, |t| {
                t.policy = policy.clone();
                Ok(())
            })
            .await?;
        let target = format!("tenant:{tenant}");
        self.record(
            principal,
            tenant.as_str(),
            "identity.policy.update",
            &target,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(updated)
    }

    /// Checks that `principal` may give `role` in `domain` of `tenant`: the domain is the
    /// tenant or one of its stores (or the platform, for platform staff), and the role is a
    /// built-in one or one the tenant defined.
    async fn check_grant(
        &self,
        principal: &Principal,
        tenant: &str,
        role: &str,
        domain: &str,
        request_id: &str,
    ) -> ServiceResult<()> {
        let in_tenant = domain == tenant
            || domain
                .strip_prefix(tenant)
                .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1);
        if !in_tenant {
            return Err(ServiceError::invalid(format!(
                "a role of tenant {tenant} is held in {tenant} or one of its stores ({tenant}/<store>)"
            )));
        }
        let custom = role
            .strip_prefix(tenant)
            .is_some_and(|rest| rest.starts_with(':'));
        let built_in = built_in_roles().contains(&role);
        if !(custom || built_in) || (role == "platform_admin" && tenant != PLATFORM) {
            return Err(ServiceError::invalid(format!(
                "unknown role {role}: use one of {} or {tenant}:<name>",
                built_in_roles().join(", ")
            )));
        }
        self.authorize(principal, domain, permissions::ROLES_WRITE, request_id)
            .await
    }

    /// Creates a staff account of `tenant` (`*`: the platform) holding `roles`, each
    /// `(role, domain)`. Without a password, one is generated and must be changed at first
    /// login; when the tenant requires a second factor, one is enrolled.
    pub async fn create_staff(
        &self,
        principal: &Principal,
        tenant: &str,
        new: NewStaff,
        request_id: &str,
    ) -> ServiceResult<CreatedStaff> {
        let NewStaff {
            username,
            display_name,
            roles,
            password,
        } = new;
        self.authorize(principal, tenant, permissions::STAFF_WRITE, request_id)
            .await?;
        for (role, domain) in &roles {
            self.check_grant(principal, tenant, role, domain, request_id)
                .await?;
        }
        let username = Username::parse(&username)?;
        let policy = self.policy_of(tenant).await?;
        let generated = password.is_none().then(generated_password);
        let password = password
            .as_deref()
            .or(generated.as_deref())
            .unwrap_or_default();
        if generated.is_none() {
            policy.password.check(password, username.as_str(), tenant)?;
        }
        let totp = policy.require_totp.then(TotpSecret::generate);
        let totp_uri = match &totp {
            Some(secret) => {
                Some(secret.provisioning_uri(&format!("memberd {tenant}"), username.as_str())?)
            }
            None => None,
        };
        let staff = Staff {
            id: StaffId(ulid::Ulid::new()),
            tenant: tenant.into(),
            username,
            display_name,
            password_hash: self.passwords.hash(password)?,
            must_change_password: generated.is_some(),
            totp: totp.map(|secret| TotpEnrolment {
                secret: secret.as_bytes().to_vec(),
                confirmed: false,
                last_step: None,
            }),
            failures: LoginFailures::default(),
            disabled: false,
            created_at: self.now(),
            version: 1,
        };
        if self.ports.staff.put_staff(&staff).await? == Applied::Conflict {
            return Err(already_exists(&format!(
                "username {}",
                staff.username.as_str()
            )));
        }
        for (role, domain) in &roles {
            self.authorizer
                .grant(&staff.subject(), role, domain)
                .await?;
        }
        if !roles.is_empty() {
            self.announce(Change::Policy).await;
        }
        self.record(
            principal,
            tenant,
            "identity.staff.create",
            &staff.subject(),
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(CreatedStaff {
            id: staff.id,
            initial_password: generated,
            totp_uri,
        })
    }

    /// Changes a staff account with `change` after checking `permission` in its tenant (None:
    /// the caller changes their own account).
    async fn change_staff(
        &self,
        principal: &Principal,
        id: StaffId,
        permission: Option<Permission>,
        action: &str,
        request_id: &str,
        change: impl Fn(&mut Staff) -> ServiceResult<()>,
    ) -> ServiceResult<Staff> {
        for _ in 0..8 {
            let mut staff = self
                .ports
                .staff
                .staff(id)
                .await?
                .ok_or_else(|| not_found("staff account"))?;
            if let Some(permission) = permission {
                self.authorize(principal, &staff.tenant, permission, request_id)
                    .await?;
            }
            change(&mut staff)?;
            staff.version += 1;
            if self.ports.staff.put_staff(&staff).await? == Applied::Yes {
                self.record(
                    principal,
                    &staff.tenant,
                    action,
                    &staff.subject(),
                    Outcome::Allowed,
                    request_id,
                )
                .await?;
                return Ok(staff);
            }
        }
        Err(ServiceError::new(
            ErrorCode::VersionConflict,
            "the account is busy; retry",
        ))
    }

    /// Sets a new generated password, to be changed at the next login; returns it once.
    pub async fn reset_password(
        &self,
        principal: &Principal,
        id: StaffId,
        request_id: &str,
    ) -> ServiceResult<String> {
        let password = generated_password();
        let hash = self.passwords.hash(&password)?;
        self.change_staff(
            principal,
            id,
            Some(permissions::STAFF_WRITE),
            "identity.staff.reset_password",
            request_id,
            |s| {
                s.password_hash = hash.clone();
                s.must_change_password = true;
                s.failures = LoginFailures::default();
                Ok(())
            },
        )
        .await?;
        Ok(password)
    }

    /// Releases a lock before its time.
    pub async fn unlock(
        &self,
        principal: &Principal,
        id: StaffId,
        request_id: &str,
    ) -> ServiceResult<()> {
        self.change_staff(
            principal,
            id,
            Some(permissions::STAFF_WRITE),
            "identity.staff.unlock",
            request_id,
            |s| {
                s.failures = LoginFailures::default();
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// Enrols a new second factor (replacing any); returns the `otpauth://` URI to scan.
    pub async fn enrol_totp(
        &self,
        principal: &Principal,
        id: StaffId,
        request_id: &str,
    ) -> ServiceResult<String> {
        let secret = TotpSecret::generate();
        let staff = self
            .change_staff(
                principal,
                id,
                Some(permissions::STAFF_WRITE),
                "identity.staff.enrol_totp",
                request_id,
                |s| {
                    s.totp = Some(TotpEnrolment {
                        secret: secret.as_bytes().to_vec(),
                        confirmed: false,
                        last_step: None,
                    });
                    Ok(())
                },
            )
            .await?;
        secret.provisioning_uri(
            &format!("memberd {}", staff.tenant),
            staff.username.as_str(),
        )
    }

    /// The caller changes their own password (required after a reset).
    pub async fn change_password(
        &self,
        principal: &Principal,
        old: &str,
        new: &str,
        request_id: &str,
    ) -> ServiceResult<()> {
        let super::PrincipalKind::Staff { id, .. } = principal.kind else {
            return Err(ServiceError::invalid("only staff have passwords"));
        };
        let staff = self
            .ports
            .staff
            .staff(id)
            .await?
            .ok_or_else(|| not_found("staff account"))?;
        if !self.passwords.verify(old, &staff.password_hash) {
            return Err(ServiceError::new(
                ErrorCode::InvalidCredentials,
                "the current password is wrong",
            ));
        }
        if old == new {
            return Err(ServiceError::new(
                ErrorCode::PasswordPolicy,
                "choose a password you have not used",
            ));
        }
        let policy = self.policy_of(&staff.tenant).await?;
        policy
            .password
            .check(new, staff.username.as_str(), &staff.tenant)?;
        let hash = self.passwords.hash(new)?;
        self.change_staff(
            principal,
            id,
            None,
            "identity.staff.change_password",
            request_id,
            |s| {
                s.password_hash = hash.clone();
                s.must_change_password = false;
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// Gives `role` in `domain` to a staff account or API key of `tenant`.
    pub async fn grant(
        &self,
        principal: &Principal,
        tenant: &str,
        subject: &str,
        role: &str,
        domain: &str,
        request_id: &str,
    ) -> ServiceResult<bool> {
        let grant = RoleChange::Grant;
        self.change_role(
            principal,
            tenant,
            subject,
            (grant, role, domain),
            request_id,
        )
        .await
    }

    /// Takes `role` in `domain` from a staff account or API key of `tenant`.
    pub async fn revoke(
        &self,
        principal: &Principal,
        tenant: &str,
        subject: &str,
        role: &str,
        domain: &str,
        request_id: &str,
    ) -> ServiceResult<bool> {
        let revoke = RoleChange::Revoke;
        self.change_role(
            principal,
            tenant,
            subject,
            (revoke, role, domain),
            request_id,
        )
        .await
    }

    /// Grants or revokes; true if the subject's roles changed.
    async fn change_role(
        &self,
        principal: &Principal,
        tenant: &str,
        subject: &str,
        (change, role, domain): (RoleChange, &str, &str),
        request_id: &str,
    ) -> ServiceResult<bool> {
        self.check_grant(principal, tenant, role, domain, request_id)
            .await?;
        let (changed, verb) = match change {
            RoleChange::Grant => (self.authorizer.grant(subject, role, domain).await?, "grant"),
            RoleChange::Revoke => (
                self.authorizer.revoke(subject, role, domain).await?,
                "revoke",
            ),
        };
        if changed {
            self.announce(Change::Policy).await;
        }
        let action = format!("identity.role.{verb}:{role}@{domain}");
        self.record(
            principal,
            tenant,
            &action,
            subject,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(changed)
    }

    /// Defines (or extends) a tenant's custom role `<tenant>:<name>`.
    pub async fn define_role(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        name: &str,
        allowed: &[Permission],
        request_id: &str,
    ) -> ServiceResult<String> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(ServiceError::invalid(
                "a role name is 1 to 64 letters, digits, '_' or '-'",
            ));
        }
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::ROLES_WRITE,
            request_id,
        )
        .await?;
        let role = format!("{tenant}:{name}");
        for permission in allowed {
            self.authorizer
                .allow_role(&role, tenant.as_str(), *permission)
                .await?;
        }
        self.announce(Change::Policy).await;
        self.record(
            principal,
            tenant.as_str(),
            "identity.role.define",
            &role,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(role)
    }

    /// A new API key for a partner system of `tenant`, holding `roles` in the tenant.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        name: &str,
        roles: &[String],
        expires_at: Option<Timestamp>,
        request_id: &str,
    ) -> ServiceResult<NewApiKey> {
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::API_KEYS_WRITE,
            request_id,
        )
        .await?;
        for role in roles {
            self.check_grant(
                principal,
                tenant.as_str(),
                role,
                tenant.as_str(),
                request_id,
            )
            .await?;
        }
        let issued = opaque::issue(Kind::ApiKey);
        let key = ApiKey {
            id: ApiKeyId(issued.id),
            tenant: tenant.clone(),
            name: name.into(),
            hash: issued.hash,
            roles: roles.to_vec(),
            created_at: self.now(),
            created_by: principal.subject.clone(),
            expires_at,
            last_used_at: None,
            revoked_at: None,
            version: 1,
        };
        if self.ports.api_keys.put_api_key(&key).await? == Applied::Conflict {
            return Err(already_exists("the API key"));
        }
        for role in roles {
            self.authorizer
                .grant(&subject_of_key(key.id), role, tenant.as_str())
                .await?;
        }
        // A replica may have refused (and remembered refusing) the unknown key already.
        self.announce(Change::Policy).await;
        self.record(
            principal,
            tenant.as_str(),
            "identity.api_key.create",
            &subject_of_key(key.id),
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(NewApiKey {
            id: key.id,
            key: issued.text,
        })
    }

    /// Revokes an API key: it stops working at its next request.
    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        request_id: &str,
    ) -> ServiceResult<()> {
        for _ in 0..8 {
            let mut key = self
                .ports
                .api_keys
                .api_key(id)
                .await?
                .ok_or_else(|| not_found("API key"))?;
            self.authorize(
                principal,
                key.tenant.as_str(),
                permissions::API_KEYS_WRITE,
                request_id,
            )
            .await?;
            if key.revoked_at.is_some() {
                return Ok(());
            }
            key.revoked_at = Some(self.now());
            key.version += 1;
            if self.ports.api_keys.put_api_key(&key).await? == Applied::Yes {
                self.forget_key(id);
                self.announce(Change::ApiKeyChanged { id }).await;
                let target = subject_of_key(id);
                return self
                    .record(
                        principal,
                        key.tenant.as_str(),
                        "identity.api_key.revoke",
                        &target,
                        Outcome::Allowed,
                        request_id,
                    )
                    .await;
            }
        }
        Err(ServiceError::new(
            ErrorCode::VersionConflict,
            "the key is busy; retry",
        ))
    }

    /// Replaces an API key with a new one holding the same roles; the old one is revoked.
    pub async fn rotate_api_key(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        request_id: &str,
    ) -> ServiceResult<NewApiKey> {
        let old = self
            .ports
            .api_keys
            .api_key(id)
            .await?
            .ok_or_else(|| not_found("API key"))?;
        let new = self
            .create_api_key(
                principal,
                &old.tenant,
                &old.name,
                &old.roles,
                old.expires_at,
                request_id,
            )
            .await?;
        self.revoke_api_key(principal, id, request_id).await?;
        Ok(new)
    }

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
        })
    }
}
