//! Logging in (password, second factor, lockout), refreshing (rotation, theft detection),
//! logging out, and authenticating API keys.

use super::{IdentityService, KEY_RECHECK_MS, Principal, PrincipalKind, unauthenticated};
use crate::audit::Outcome;
use crate::changes::Change;
use crate::model::{ApiKey, Session, Staff, Username, subject_of_key, subject_of_staff};
use crate::opaque::{self, Kind};
use crate::store::Applied;
use crate::totp::TotpSecret;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{ApiKeyId, SessionId, TenantId};
use loyalty_common::{ServiceError, Timestamp};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Replaced refresh tokens remembered per session, to recognise one presented again.
const REMEMBERED: usize = 16;
/// How often an API key's last-used time is written at most.
const LAST_USED_EVERY_SECS: i64 = 60;
/// API keys remembered at most (then forgotten all at once and read again).
const KEYS_SEEN_CAP: usize = 65_536;
/// Attempts when a concurrent write changed the same record.
const ATTEMPTS: usize = 8;

/// What a login or a refresh returns.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub access_token: String,
    pub access_expires_at: Timestamp,
    /// Shown once; presenting it again after it was used ends the session.
    pub refresh_token: String,
    pub session: SessionId,
    pub staff: Principal,
    /// An administrator reset the password: change it before anything else.
    pub must_change_password: bool,
}

fn invalid_credentials() -> ServiceError {
    ServiceError::new(
        ErrorCode::InvalidCredentials,
        "the username, password or one-time code is wrong",
    )
}

fn conflict() -> ServiceError {
    ServiceError::new(
        ErrorCode::VersionConflict,
        "the account changed meanwhile; retry",
    )
}

impl IdentityService {
    /// Logs `username` of `tenant` (`*` for platform staff) in with `password` and, when the
    /// account or its tenant's policy asks for one, a one-time code.
    pub async fn login(
        &self,
        tenant: &str,
        username: &str,
        password: &str,
        code: Option<&str>,
        request_id: &str,
    ) -> ServiceResult<LoggedIn> {
        let username = Username::parse(username).map_err(|_| invalid_credentials())?;
        for _ in 0..ATTEMPTS {
            let Some(staff) = self
                .ports
                .staff
                .staff_by_username(tenant, &username)
                .await?
            else {
                self.passwords.verify_decoy(password);
                return Err(invalid_credentials());
            };
            match self.check_login(staff, password, code).await? {
                Checked::Retry => continue,
                Checked::Refused(error, staff) => {
                    let outcome = Outcome::Failed(error.code.as_str().into());
                    let who = principal_of(&staff, SessionId(ulid::Ulid::nil()));
                    self.record(
                        &who,
                        tenant,
                        "identity.login",
                        &who.subject,
                        outcome,
                        request_id,
                    )
                    .await?;
                    return Err(error);
                }
                Checked::Passed(staff) => {
                    let logged_in = self.open_session(&staff).await?;
                    let who = &logged_in.staff;
                    self.record(
                        who,
                        tenant,
                        "identity.login",
                        &who.subject,
                        Outcome::Allowed,
                        request_id,
                    )
                    .await?;
                    return Ok(logged_in);
                }
            }
        }
        Err(conflict())
    }

    /// Checks one login attempt and stores what it changed (failures, lock, code step).
    async fn check_login(
        &self,
        mut staff: Staff,
        password: &str,
        code: Option<&str>,
    ) -> ServiceResult<Checked> {
        let now = self.now();
        if staff.disabled {
            self.passwords.verify_decoy(password);
            return Ok(Checked::Refused(invalid_credentials(), staff));
        }
        if let Some(until) = staff.failures.locked(now) {
            let error = ServiceError::new(
                ErrorCode::AccountLocked,
                format!(
                    "too many failed logins: locked until {}, or until an administrator \
                     releases it",
                    until.to_rfc3339()
                ),
            );
            return Ok(Checked::Refused(error, staff));
        }
        let policy = self.policy_of(&staff.tenant).await?;
        let mut error = None;
        if !self.passwords.verify(password, &staff.password_hash) {
            error = Some(invalid_credentials());
        } else if policy.require_totp || staff.totp.as_ref().is_some_and(|t| t.confirmed) {
            match (&mut staff.totp, code) {
                (None, _) => {
                    // The password was right: not a failure, but no way in yet.
                    let error = ServiceError::new(
                        ErrorCode::TotpRequired,
                        "this tenant requires a second factor and the account has none; \
                         ask an administrator to enrol one",
                    );
                    return Ok(Checked::Refused(error, staff));
                }
                (Some(_), None) => {
                    // Not a failure: the client asks for the code and tries again.
                    return Ok(Checked::Refused(
                        ServiceError::new(ErrorCode::TotpRequired, "send the one-time code"),
                        staff,
                    ));
                }
                (Some(totp), Some(code)) => {
                    let secret = TotpSecret::from_bytes(totp.secret.clone());
                    let secs = u64::try_from(now.0.div_euclid(1000)).unwrap_or(0);
                    match secret.verify(code, secs, totp.last_step)? {
                        Some(step) => {
                            totp.last_step = Some(step);
                            totp.confirmed = true;
                        }
                        None => error = Some(invalid_credentials()),
                    }
                }
            }
        }
        staff.version += 1;
        let refused = match error {
            Some(error) => {
                if let Some(until) = staff.failures.fail(&policy.lockout, now) {
                    let locked = ServiceError::new(
                        ErrorCode::AccountLocked,
                        format!(
                            "too many failed logins: locked until {}",
                            until.to_rfc3339()
                        ),
                    );
                    Some(locked)
                } else {
                    Some(error)
                }
            }
            None => {
                staff.failures = Default::default();
                if self.passwords.needs_rehash(&staff.password_hash) {
                    staff.password_hash = self.passwords.hash(password)?;
                }
                None
            }
        };
        if self.ports.staff.put_staff(&staff).await? == Applied::Conflict {
            return Ok(Checked::Retry);
        }
        Ok(match refused {
            Some(error) => Checked::Refused(error, staff),
            None => Checked::Passed(staff),
        })
    }

    pub(crate) async fn policy_of(
        &self,
        tenant: &str,
    ) -> ServiceResult<crate::policy::SecurityPolicy> {
        let Ok(id) = TenantId::parse(tenant) else {
            // The platform's own staff: the default policy.
            return Ok(Default::default());
        };
        Ok(self
            .ports
            .tenants
            .tenant(&id)
            .await?
            .map(|t| t.policy)
            .unwrap_or_default())
    }

    async fn open_session(&self, staff: &Staff) -> ServiceResult<LoggedIn> {
        let now = self.now();
        // Its time is the service clock's: a deactivation ends the sessions begun until then
        // by comparing the two (see `deactivated`).
        let begun = std::time::UNIX_EPOCH + std::time::Duration::from_millis(now.0.max(0) as u64);
        let id = SessionId(ulid::Ulid::from_datetime(begun));
        let refresh = opaque::issue_for(Kind::RefreshToken, id.0);
        let session = Session {
            id,
            staff: staff.id,
            tenant: staff.tenant.clone(),
            created_at: now,
            expires_at: now.plus_secs(self.config.session_ttl_secs),
            revoked_at: None,
            refresh: refresh.hash,
            replaced: Vec::new(),
            version: 1,
        };
        if self.ports.sessions.put_session(&session).await? == Applied::Conflict {
            return Err(conflict());
        }
        self.tokens_for(staff, &session, refresh.text)
    }

    fn tokens_for(
        &self,
        staff: &Staff,
        session: &Session,
        refresh_token: String,
    ) -> ServiceResult<LoggedIn> {
        let subject = subject_of_staff(staff.id);
        let (access_token, claims) =
            self.issuer
                .issue(&subject, &staff.tenant, &session.id.to_string(), self.now())?;
        Ok(LoggedIn {
            access_token,
            access_expires_at: Timestamp(claims.exp.saturating_mul(1000)),
            refresh_token,
            session: session.id,
            staff: principal_of(staff, session.id),
            must_change_password: staff.must_change_password,
        })
    }

    /// A new access token and refresh token for a refresh token. A refresh token works once:
    /// presenting a replaced one again means it was copied, and ends the session.
    pub async fn refresh(&self, refresh_token: &str, request_id: &str) -> ServiceResult<LoggedIn> {
        let (id, secret) =
            opaque::parse(Kind::RefreshToken, refresh_token).ok_or_else(invalid_credentials)?;
        for _ in 0..ATTEMPTS {
            let now = self.now();
            let mut session = self
                .ports
                .sessions
                .session(SessionId(id))
                .await?
                .ok_or_else(invalid_credentials)?;
            if !session.is_live(now) {
                return Err(unauthenticated("the session has ended; log in again"));
            }
            if session.replaced.iter().any(|h| h.matches(secret)) {
                self.end_session(session).await?;
                let who = Principal::system();
                let target = format!("session:{}", SessionId(id));
                let outcome = Outcome::Denied("REFRESH_TOKEN_REUSED".into());
                self.record(
                    &who,
                    &self.session_tenant(id).await,
                    "identity.refresh",
                    &target,
                    outcome,
                    request_id,
                )
                .await?;
                return Err(unauthenticated(
                    "this refresh token was used before, so it may have been copied: the \
                     session is ended; log in again",
                ));
            }
            if !session.refresh.matches(secret) {
                return Err(invalid_credentials());
            }
            let staff = self
                .ports
                .staff
                .staff(session.staff)
                .await?
                .filter(|s| !s.disabled)
                .ok_or_else(|| unauthenticated("the account is disabled"))?;
            let next = opaque::issue_for(Kind::RefreshToken, id);
            session.replaced.push(session.refresh);
            if session.replaced.len() > REMEMBERED {
                session.replaced.remove(0);
            }
            session.refresh = next.hash;
            session.version += 1;
            if self.ports.sessions.put_session(&session).await? == Applied::Yes {
                return self.tokens_for(&staff, &session, next.text);
            }
        }
        Err(conflict())
    }

    async fn session_tenant(&self, id: ulid::Ulid) -> String {
        match self.ports.sessions.session(SessionId(id)).await {
            Ok(Some(session)) => session.tenant,
            _ => crate::model::PLATFORM.into(),
        }
    }

    /// Ends `principal`'s session: its refresh token and every access token of it stop
    /// working at once.
    pub async fn logout(&self, principal: &Principal, request_id: &str) -> ServiceResult<()> {
        let PrincipalKind::Staff { session, .. } = principal.kind else {
            return Err(ServiceError::invalid("only a staff session can log out"));
        };
        if let Some(stored) = self.ports.sessions.session(session).await? {
            self.end_session(stored).await?;
        }
        let target = format!("session:{session}");
        self.record(
            principal,
            &principal.tenant,
            "identity.logout",
            &target,
            Outcome::Allowed,
            request_id,
        )
        .await
    }

    /// Marks a session revoked (stored, and at once in this process).
    pub(crate) async fn end_session(&self, mut session: Session) -> ServiceResult<()> {
        self.mark_revoked(session.id);
        for _ in 0..ATTEMPTS {
            if session.revoked_at.is_some() {
                return Ok(());
            }
            session.revoked_at = Some(self.now());
            session.version += 1;
            if self.ports.sessions.put_session(&session).await? == Applied::Yes {
                let session = session.id;
                self.announce(Change::SessionRevoked { session }).await;
                return Ok(());
            }
            match self.ports.sessions.session(session.id).await? {
                Some(fresh) => session = fresh,
                None => return Ok(()),
            }
        }
        Err(conflict())
    }

    pub(crate) async fn authenticate_api_key(&self, text: &str) -> ServiceResult<Principal> {
        let refused = || unauthenticated("the API key is not valid");
        let (id, secret) = opaque::parse(Kind::ApiKey, text).ok_or_else(refused)?;
        let id = ApiKeyId(id);
        let now = self.now();
        // Taken before the read: a key forgotten meanwhile (revoked) is not remembered as read.
        let generation = self.keys_generation.load(Ordering::SeqCst);
        let (key, read_at) = match self.key_seen(id, now) {
            Some(seen) => seen,
            None => {
                let key = Arc::new(self.ports.api_keys.api_key(id).await?.ok_or_else(refused)?);
                self.remember_key(Arc::clone(&key), now.0, generation);
                (key, now.0)
            }
        };
        if !key.hash.matches(secret) {
            return Err(refused());
        }
        if !key.is_live(now) {
            return Err(unauthenticated("the API key was revoked or has expired"));
        }
        let stale = key
            .last_used_at
            .is_none_or(|at| at.plus_secs(LAST_USED_EVERY_SECS) <= now);
        if stale {
            let mut used = ApiKey::clone(&key);
            used.last_used_at = Some(now);
            used.version += 1;
            // Remembered as used at once, so that the requests until it is stored do not
            // write it again.
            self.remember_key(Arc::new(used.clone()), read_at, generation);
            // Best effort, off the request: a concurrent change wins.
            let repo = Arc::clone(&self.ports.api_keys);
            tokio::spawn(async move {
                let _ = repo.put_api_key(&used).await;
            });
        }
        Ok(Principal {
            subject: subject_of_key(key.id),
            tenant: key.tenant.to_string(),
            kind: PrincipalKind::ApiKey { id: key.id },
        })
    }

    fn keys_seen(&self) -> std::sync::MutexGuard<'_, HashMap<ApiKeyId, (Arc<ApiKey>, i64)>> {
        // A map of plain values: never left half-changed.
        self.keys_seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The copy of key `id` read from the store less than [`KEY_RECHECK_MS`] ago, and when it
    /// was read.
    fn key_seen(&self, id: ApiKeyId, now: Timestamp) -> Option<(Arc<ApiKey>, i64)> {
        let seen = self.keys_seen();
        let (key, read_at) = seen.get(&id)?;
        (now.0 - read_at < KEY_RECHECK_MS).then(|| (Arc::clone(key), *read_at))
    }

    /// Remembers `key` as read at `read_at`, unless a key was forgotten since `generation`.
    fn remember_key(&self, key: Arc<ApiKey>, read_at: i64, generation: u64) {
        let mut seen = self.keys_seen();
        // Checked under the lock that `forget_key` takes too.
        if self.keys_generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if seen.len() >= KEYS_SEEN_CAP {
            seen.clear();
        }
        seen.insert(key.id, (key, read_at));
    }

    /// Drops the copy of key `id`, so that its next use reads the store (after a change), and
    /// keeps a read that started before from remembering the old copy.
    pub(crate) fn forget_key(&self, id: ApiKeyId) {
        let mut seen = self.keys_seen();
        self.keys_generation.fetch_add(1, Ordering::SeqCst);
        seen.remove(&id);
    }
}

/// The outcome of checking one login attempt.
enum Checked {
    Passed(Staff),
    Refused(ServiceError, Staff),
    /// The account changed while it was checked: check again.
    Retry,
}

fn principal_of(staff: &Staff, session: SessionId) -> Principal {
    Principal {
        subject: subject_of_staff(staff.id),
        tenant: staff.tenant.clone(),
        kind: PrincipalKind::Staff {
            id: staff.id,
            session,
        },
    }
}
