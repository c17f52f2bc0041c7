//! Staff accounts: who may grant which roles, creation, password reset, unlock, the second
//! factor and password changes.

use super::*;

impl IdentityService {
    /// Checks that `principal` may give `role` in `domain` of `tenant`: the domain is the
    /// tenant or one of its stores (or the platform, for platform staff), and the role is a
    /// built-in one or one the tenant defined.
    pub(super) async fn check_grant(
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
            sessions_ended_at: None,
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
    pub(super) async fn change_staff(
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
        let crate::service::PrincipalKind::Staff { id, .. } = principal.kind else {
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
}
