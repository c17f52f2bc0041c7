//! The identity service: logins, sessions and API keys ([`sessions`]), tenants, staff, roles
//! and keys administered by those allowed to ([`admin`]), authentication of every request, and
//! the audit log. It runs on the ports of [`crate::store`]; the gateway and the other services
//! call it in process or over gRPC.

mod admin;
mod deactivated;
mod sessions;

pub use admin::{
    CreatedStaff, NewApiKey, NewStaff, PlaceUpdate, RoleView, StaffView, TenantUpdate,
};
pub use sessions::LoggedIn;

use crate::audit::{AuditEvent, Outcome};
use crate::audit_log::AuditLog;
use crate::changes::{Change, ChangeFeed, Heard, Notice};
use crate::model::{ApiKey, PLATFORM};
use crate::password::Passwords;
use crate::permissions::Permission;
use crate::rbac::{Authorizer, PolicyStore};
use crate::store::{
    ApiKeyRepository, AuditRepository, KeyRepository, ReplyRepository, SessionRepository,
    StaffRepository, StoredKey, StoredReply, TenantRepository,
};
use crate::tokens::{Jwks, SigningKey, TokenIssuer, TokenVerifier};
use loyalty_common::clock::SharedClock;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{ApiKeyId, SessionId, StaffId};
use loyalty_common::{ServiceError, Timestamp};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// The storage the identity service runs on.
#[derive(Clone)]
pub struct IdentityPorts {
    pub tenants: Arc<dyn TenantRepository>,
    pub staff: Arc<dyn StaffRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    pub api_keys: Arc<dyn ApiKeyRepository>,
    pub audit: Arc<dyn AuditRepository>,
    pub keys: Arc<dyn KeyRepository>,
    pub replies: Arc<dyn ReplyRepository>,
    pub policy: Arc<dyn PolicyStore>,
}

/// Settings of the identity service (`[identity]`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct IdentityConfig {
    /// The `iss` of every access token.
    pub issuer: String,
    /// How long an access token lasts.
    pub access_ttl_secs: i64,
    /// How long a session (its refresh tokens) lasts without a new login.
    pub session_ttl_secs: i64,
    /// The username of the platform administrator created on the first start.
    pub bootstrap_admin: String,
    /// Its password; unset, one is generated and printed once.
    pub bootstrap_password: Option<loyalty_common::config::Secret>,
    /// The credential memberd's own processes present to one another for the platform's own
    /// work (a trigger's reward, a sweep): the same in every process of a deployment, at
    /// least [`SERVICE_CREDENTIAL_MIN`] characters. It authenticates as [`SERVICE_SUBJECT`],
    /// which holds only the built-in `platform_service` role. Unset, no process is accepted
    /// as the platform, and work a service starts by itself cannot reach a service in
    /// another process.
    pub service_credential: Option<loyalty_common::config::Secret>,
    /// How often a replica reloads policy and revocations from the store, in case it missed
    /// an announcement on the change feed ([`crate::changes`]).
    pub resync_secs: u64,
    /// The key every replica signs access tokens with: an Ed25519 private key, PKCS#8 DER in
    /// base64, from a secret store. Unset, the first start generates one and keeps it in the
    /// identity store. Replicas that start together on a new store could each make their own,
    /// and would then refuse each other's tokens until restarted: give several replicas one
    /// key here.
    pub signing_key: Option<loyalty_common::config::Secret>,
    /// Keys whose tokens are still accepted, in the same form: a rotation puts the new key
    /// here first (rolled out to every replica), then makes it `signing_key` with the old one
    /// here, and removes the old one once an access token's life has passed.
    pub verify_keys: Vec<loyalty_common::config::Secret>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            issuer: "memberd".into(),
            access_ttl_secs: 15 * 60,
            session_ttl_secs: 30 * 24 * 3600,
            bootstrap_admin: "admin".into(),
            bootstrap_password: None,
            service_credential: None,
            resync_secs: 60,
            signing_key: None,
            verify_keys: Vec::new(),
        }
    }
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The casbin subject: `staff:<id>` or `key:<id>`.
    pub subject: String,
    /// The tenant the caller belongs to, or `*` for the platform's own staff.
    pub tenant: String,
    pub kind: PrincipalKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    Staff {
        id: StaffId,
        session: SessionId,
    },
    ApiKey {
        id: ApiKeyId,
    },
    /// The platform itself (start-up, the scheduler), in this process: allowed everything.
    System,
    /// The platform's own work reaching a service in another process, with the service
    /// credential: allowed what the `platform_service` role grants.
    Service,
}

impl Principal {
    pub fn system() -> Self {
        Self {
            subject: "system".into(),
            tenant: PLATFORM.into(),
            kind: PrincipalKind::System,
        }
    }

    /// The platform's own work, come from another process with the service credential.
    pub fn service() -> Self {
        Self {
            subject: SERVICE_SUBJECT.into(),
            tenant: PLATFORM.into(),
            kind: PrincipalKind::Service,
        }
    }
}

/// The SHA-256 of the service credential `text`, refused when it is too short to be secret.
fn service_credential_digest(text: &str) -> ServiceResult<[u8; 32]> {
    if text.trim().chars().count() < SERVICE_CREDENTIAL_MIN {
        return Err(ServiceError::invalid(format!(
            "identity.service_credential has fewer than {SERVICE_CREDENTIAL_MIN} characters: \
             set a random one, the same in every process (e.g. `head -c 32 /dev/urandom | base64`)"
        )));
    }
    Ok(Sha256::digest(text.trim().as_bytes()).into())
}

pub struct IdentityService {
    pub(crate) ports: IdentityPorts,
    pub(crate) clock: SharedClock,
    pub(crate) config: IdentityConfig,
    pub(crate) passwords: Passwords,
    pub(crate) issuer: TokenIssuer,
    pub(crate) verifier: TokenVerifier,
    jwks: Jwks,
    pub(crate) authorizer: Authorizer,
    pub(crate) audit: AuditLog,
    /// Sessions ended before they expired: every token naming one is refused.
    pub(crate) revoked: RwLock<HashSet<SessionId>>,
    /// Staff accounts deactivated: every token naming one is refused.
    pub(crate) deactivated: deactivated::Deactivated,
    /// Access tokens whose signature was checked, by their SHA-256, until they expire: an
    /// Ed25519 verification costs tens of microseconds, a lookup well under one. Revocation
    /// is still checked on every request.
    verified: std::sync::Mutex<HashMap<[u8; 32], (Principal, i64)>>,
    /// `cache_lookups_total` of `verified`, registered once: counted on every request.
    verified_hits: metrics::Counter,
    verified_misses: metrics::Counter,
    /// API keys as last read from the store, with when (ms): a key is read again once its
    /// copy is older than [`KEY_RECHECK_MS`], so a revocation made by another replica takes
    /// effect within that time, and one made here at once (the copy is dropped).
    pub(crate) keys_seen: std::sync::Mutex<HashMap<ApiKeyId, (Arc<ApiKey>, i64)>>,
    /// Moved on whenever a copy is dropped: a read that started before cannot put it back.
    pub(crate) keys_generation: std::sync::atomic::AtomicU64,
    /// The service credential's SHA-256, when one is configured.
    service_credential: Option<[u8; 32]>,
    /// This replica's name on the change feed.
    replica: String,
    /// Where this replica announces its changes to the others, once connected.
    feed: std::sync::OnceLock<Arc<dyn ChangeFeed>>,
}

/// The subject of the platform's own work across processes (see
/// [`IdentityConfig::service_credential`]).
pub const SERVICE_SUBJECT: &str = "service:memberd";
/// The shortest service credential accepted: 32 characters of a random text.
pub const SERVICE_CREDENTIAL_MIN: usize = 32;

/// How long the reply to an administrative write is kept for a retry with its key.
pub const REPLY_KEPT_SECS: i64 = 24 * 3600;
/// Verified tokens remembered at most (then forgotten all at once and verified again).
const VERIFIED_CAP: usize = 65_536;
/// How long a copy of an API key read from the store is trusted (see `keys_seen`).
pub(crate) const KEY_RECHECK_MS: i64 = 1_000;

fn deactivated_account() -> ServiceError {
    unauthenticated(
        "the account was deactivated, which ended this session; log in again once an administrator reactivates it",
    )
}

fn unauthenticated(why: &str) -> ServiceError {
    ServiceError::new(ErrorCode::Unauthenticated, why)
}

impl IdentityService {
    /// Loads (or creates, on first start) the signing key, the policies and the revoked
    /// sessions. Must run inside a Tokio runtime (the audit appender is a task).
    pub async fn start(
        ports: IdentityPorts,
        clock: SharedClock,
        config: IdentityConfig,
        passwords: Passwords,
    ) -> ServiceResult<Arc<Self>> {
        let service_credential = config
            .service_credential
            .as_ref()
            .map(|secret| service_credential_digest(secret.expose()))
            .transpose()?;
        let now = clock.now();
        let configured = config
            .signing_key
            .as_ref()
            .map(|key| SigningKey::from_setting(key.expose(), "identity.signing_key"))
            .transpose()?;
        let mut stored = ports.keys.signing_keys().await?;
        if configured.is_none() && !stored.iter().any(|k| k.retired_at.is_none()) {
            let key = SigningKey::generate()?;
            let record = StoredKey {
                kid: key.kid().to_string(),
                pkcs8: key.pkcs8().to_vec(),
                created_at: now,
                retired_at: None,
            };
            ports.keys.put_signing_key(&record).await?;
            stored.push(record);
        }
        stored.sort_by_key(|k| k.created_at);
        let mut jwks = Jwks::default();
        let mut current = None;
        for record in &stored {
            let key = SigningKey::from_pkcs8(record.pkcs8.clone())?;
            // Keys retired longer ago than a token lives verify nothing any more.
            let in_use = record
                .retired_at
                .is_none_or(|at| at.plus_secs(config.access_ttl_secs) > now);
            if in_use {
                jwks.keys.push(key.public());
            }
            if record.retired_at.is_none() {
                current = Some(key);
            }
        }
        // A configured key signs; the stored ones still verify what they signed.
        let current = match configured {
            Some(key) => {
                jwks.keys.push(key.public());
                key
            }
            None => current.ok_or_else(|| ServiceError::internal("no current signing key"))?,
        };
        for key in &config.verify_keys {
            jwks.keys
                .push(SigningKey::from_setting(key.expose(), "identity.verify_keys")?.public());
        }
        let mut seen = std::collections::HashSet::new();
        jwks.keys.retain(|key| seen.insert(key.kid.clone()));
        let issuer = TokenIssuer::new(&config.issuer, config.access_ttl_secs, current);
        let verifier = TokenVerifier::new(&config.issuer, &jwks);
        let authorizer = Authorizer::new(Arc::clone(&ports.policy)).await?;
        let revoked = ports.sessions.revoked_sessions(now).await?;
        let deactivated = deactivated::Deactivated::default();
        deactivated.replace(deactivated::Deactivated::load(&ports).await?);
        let audit = AuditLog::start(Arc::clone(&ports.audit));
        Ok(Arc::new(Self {
            ports,
            clock,
            config,
            passwords,
            issuer,
            verifier,
            jwks,
            authorizer,
            audit,
            revoked: RwLock::new(revoked.into_iter().collect()),
            deactivated,
            verified: std::sync::Mutex::default(),
            verified_hits: metrics::counter!("cache_lookups_total",
                "cache" => "identity_verified_tokens", "result" => "hit"),
            verified_misses: metrics::counter!("cache_lookups_total",
                "cache" => "identity_verified_tokens", "result" => "miss"),
            keys_seen: std::sync::Mutex::default(),
            keys_generation: std::sync::atomic::AtomicU64::new(0),
            service_credential,
            replica: ulid::Ulid::new().to_string(),
            feed: std::sync::OnceLock::new(),
        }))
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The public keys that verify access tokens (served as `/.well-known/jwks.json`).
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    pub fn authorizer(&self) -> &Authorizer {
        &self.authorizer
    }

    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// Who sent `credential`: an access token (`Authorization: Bearer <jwt>`), an API key
    /// (`lk_…`, as a bearer token or in `X-Api-Key`), or the service credential.
    pub async fn authenticate(&self, credential: &str) -> ServiceResult<Principal> {
        let credential = credential.trim();
        if credential.starts_with("lk_") {
            return self.authenticate_api_key(credential).await;
        }
        let digest: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
        if let Some(service) = &self.service_credential
            && constant_time_eq::constant_time_eq(service, &digest)
        {
            return Ok(Principal::service());
        }
        let now_secs = self.now().0.div_euclid(1000);
        let cached = self.verified_cache().get(&digest).cloned();
        if let Some((principal, exp)) = cached
            && exp > now_secs
        {
            if let PrincipalKind::Staff { id, session } = principal.kind {
                if self.is_revoked(session) {
                    return Err(unauthenticated("the session was ended; log in again"));
                }
                if self.deactivated.refuses(id, session) {
                    return Err(deactivated_account());
                }
            }
            self.verified_hits.increment(1);
            return Ok(principal);
        }
        self.verified_misses.increment(1);
        let claims = self.verifier.verify(credential, self.now())?;
        let staff = claims
            .sub
            .strip_prefix("staff:")
            .and_then(|id| StaffId::parse(id).ok())
            .ok_or_else(|| unauthenticated("the token's subject is not a staff account"))?;
        let session = SessionId::parse(&claims.sid)
            .map_err(|_| unauthenticated("the token's session is malformed"))?;
        if self.is_revoked(session) {
            return Err(unauthenticated("the session was ended; log in again"));
        }
        if self.deactivated.refuses(staff, session) {
            return Err(deactivated_account());
        }
        let principal = Principal {
            subject: claims.sub,
            tenant: claims.tid,
            kind: PrincipalKind::Staff { id: staff, session },
        };
        let mut cache = self.verified_cache();
        if cache.len() >= VERIFIED_CAP {
            cache.clear();
        }
        cache.insert(digest, (principal.clone(), claims.exp));
        Ok(principal)
    }

    fn verified_cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Principal, i64)>> {
        // A map of plain values: never left half-changed.
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn is_revoked(&self, session: SessionId) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&session)
    }

    pub(crate) fn mark_revoked(&self, session: SessionId) {
        self.revoked
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session);
    }

    /// Reads the revoked sessions and API keys again: how a replica takes revocations made
    /// elsewhere.
    pub async fn reload_revocations(&self) -> ServiceResult<()> {
        let revoked = self.ports.sessions.revoked_sessions(self.now()).await?;
        // Added to, never replaced: a logout here marks its session before storing it, and a
        // reload in between must not forget it. A revoked session never comes back.
        self.revoked
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .extend(revoked);
        self.deactivated
            .replace(deactivated::Deactivated::load(&self.ports).await?);
        let mut seen = self.keys_seen.lock().unwrap_or_else(|p| p.into_inner());
        self.keys_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        seen.clear();
        Ok(())
    }

    /// The record a reply is kept under: the caller's subject, the request's path and its
    /// idempotency key, hashed (each part length-prefixed, so no two requests share one).
    pub fn reply_record(subject: &str, path: &str, key: &str) -> String {
        let mut hasher = Sha256::new();
        for part in [subject, path, key] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// The reply kept for an administrative write's idempotency record `key`, if it is
    /// younger than [`REPLY_KEPT_SECS`].
    pub async fn kept_reply(&self, key: &str) -> ServiceResult<Option<StoredReply>> {
        let reply = self.ports.replies.reply(key).await?;
        let now = self.now();
        Ok(reply.filter(|r| r.at.plus_secs(REPLY_KEPT_SECS) > now))
    }

    /// Keeps the reply to an administrative write under its idempotency record `key`.
    pub async fn keep_reply(&self, key: &str, reply: &StoredReply) -> ServiceResult<()> {
        self.ports.replies.put_reply(key, reply).await
    }

    /// Announces this replica's changes on `feed` from now on (set once; later calls are
    /// ignored). See [`crate::changes`].
    pub fn announce_on(&self, feed: Arc<dyn ChangeFeed>) {
        let _ = self.feed.set(feed);
    }

    /// This replica's name on the change feed.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Tells the other replicas about a change stored here. Best effort: a replica that
    /// misses it catches up at its next resync.
    pub(crate) async fn announce(&self, change: Change) {
        let Some(feed) = self.feed.get() else {
            return;
        };
        let notice = Notice {
            origin: self.replica.clone(),
            change,
        };
        if let Err(e) = feed.announce(&notice).await {
            tracing::warn!(error = %e, ?notice, "announcing an identity change failed");
        }
    }

    /// Applies what the change feed brought: another replica's change, or a resync.
    pub async fn hear(&self, heard: Heard) -> ServiceResult<()> {
        let change = match heard {
            Heard::Notice(notice) if notice.origin == self.replica => return Ok(()),
            Heard::Notice(notice) => notice.change,
            Heard::Resync => {
                self.authorizer.reload().await?;
                return self.reload_revocations().await;
            }
        };
        match change {
            Change::Policy => self.authorizer.reload().await?,
            Change::SessionRevoked { session } => self.mark_revoked(session),
            Change::ApiKeyChanged { id } => self.forget_key(id),
            Change::StaffActive {
                id,
                active,
                sessions_ended_at,
            } => self.deactivated.set(
                id,
                deactivated::Cut {
                    active,
                    sessions_ended_at,
                },
            ),
        }
        Ok(())
    }

    /// Refuses `principal` unless its roles grant `permission` in `domain`, and records a
    /// refusal in the audit log.
    pub async fn authorize(
        &self,
        principal: &Principal,
        domain: &str,
        permission: Permission,
        request_id: &str,
    ) -> ServiceResult<()> {
        if principal.kind == PrincipalKind::System {
            return Ok(());
        }
        let refused = match self
            .authorizer
            .require(&principal.subject, domain, permission)
            .await
        {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let tenant = domain.split('/').next().unwrap_or(domain);
        let event = AuditEvent {
            actor: principal.subject.clone(),
            action: format!("{}.{}", permission.object, permission.action.as_str()),
            target: domain.to_string(),
            outcome: Outcome::Denied(refused.code.as_str().into()),
            request_id: request_id.into(),
            at: self.now(),
        };
        self.audit.record(tenant, event).await?;
        Err(refused)
    }

    /// What `principal`'s roles grant it in `domain` (its own tenant, one of the tenant's
    /// stores, or anywhere for the platform's staff), recording nothing: a console asks once
    /// to show only the menus its user can use, and every call is still checked on its own.
    pub async fn grants(
        &self,
        principal: &Principal,
        domain: &str,
    ) -> ServiceResult<Vec<Permission>> {
        let (tenant, store) = match domain.split_once('/') {
            Some((tenant, store)) => (tenant, Some(store)),
            None => (domain, None),
        };
        let domain = if tenant == PLATFORM && store.is_none() {
            if principal.tenant != PLATFORM {
                return Err(ServiceError::new(
                    ErrorCode::Forbidden,
                    "only the platform's own staff hold grants in the platform's domain",
                ));
            }
            PLATFORM.to_string()
        } else {
            crate::credential::domain(principal, tenant, store)?
        };
        if principal.kind == PrincipalKind::System {
            return Ok(crate::permissions::ALL.to_vec());
        }
        let mut granted = Vec::new();
        for permission in crate::permissions::ALL {
            if self
                .authorizer
                .allows(&principal.subject, &domain, *permission)
                .await?
            {
                granted.push(*permission);
            }
        }
        Ok(granted)
    }

    /// The time zone of the tenant of `domain` (`acme` or `acme/s01`), for a caller
    /// [`IdentityService::grants`] has admitted to it.
    pub async fn time_zone_of(&self, domain: &str) -> ServiceResult<Option<String>> {
        let tenant = domain.split('/').next().unwrap_or(domain);
        if tenant == PLATFORM {
            return Ok(None);
        }
        let tenant = loyalty_common::ids::TenantId::parse(tenant)?;
        Ok(self
            .ports
            .tenants
            .tenant(&tenant)
            .await?
            .and_then(|t| t.time_zone))
    }

    /// Records an act of `principal` in the audit log of `tenant`.
    pub async fn record(
        &self,
        principal: &Principal,
        tenant: &str,
        action: &str,
        target: &str,
        outcome: Outcome,
        request_id: &str,
    ) -> ServiceResult<()> {
        let event = AuditEvent {
            actor: principal.subject.clone(),
            action: action.into(),
            target: target.into(),
            outcome,
            request_id: request_id.into(),
            at: self.now(),
        };
        self.audit.record(tenant, event).await
    }
}

#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod service_credential_tests;
#[cfg(test)]
mod signing_key_tests;
#[cfg(test)]
mod tests;
