use super::*;
use crate::model::Brand;
use crate::permissions::*;
use crate::service::NewStaff;
use crate::store::embedded::EmbeddedIdentityStore;
use crate::totp::TotpSecret;
use loyalty_common::ManualClock;
use loyalty_common::ids::{BrandId, TenantId};

pub(super) struct Harness {
    pub(super) service: Arc<IdentityService>,
    pub(super) clock: Arc<ManualClock>,
    pub(super) store: EmbeddedIdentityStore,
    _dir: tempfile::TempDir,
}

const START: Timestamp = Timestamp(1_800_000_000_000);

pub(super) async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedIdentityStore::open(dir.path()).unwrap();
    let clock = ManualClock::new(START);
    let service = IdentityService::start(
        ports(&store),
        clock.clone(),
        IdentityConfig::default(),
        Passwords::for_tests(),
    )
    .await
    .unwrap();
    Harness {
        service,
        clock,
        store,
        _dir: dir,
    }
}

pub(super) fn ports(store: &EmbeddedIdentityStore) -> IdentityPorts {
    store.ports()
}

pub(super) const PASSWORD: &str = "plum-kettle-orbit-42";

fn new_staff(
    username: &str,
    name: &str,
    roles: &[(String, String)],
    password: Option<&str>,
) -> NewStaff {
    NewStaff {
        username: username.into(),
        display_name: name.into(),
        roles: roles.to_vec(),
        password: password.map(String::from),
    }
}

impl Harness {
    /// Another replica of the service on the same store and clock.
    pub(super) async fn replica(&self) -> Arc<IdentityService> {
        IdentityService::start(
            ports(&self.store),
            self.clock.clone(),
            IdentityConfig::default(),
            Passwords::for_tests(),
        )
        .await
        .unwrap()
    }

    /// The platform admin, logged in.
    async fn platform_admin(&self) -> Principal {
        let password = self
            .service
            .ensure_platform_admin("root", Some(PASSWORD))
            .await
            .unwrap();
        assert!(password.is_some(), "created on the first start");
        self.login("*", "root", PASSWORD).await
    }

    async fn login(&self, tenant: &str, user: &str, password: &str) -> Principal {
        let logged_in = self
            .service
            .login(tenant, user, password, None, "r")
            .await
            .unwrap();
        self.service
            .authenticate(&logged_in.access_token)
            .await
            .unwrap()
    }

    /// Tenant `acme` with its admin `ann`, logged in.
    pub(super) async fn acme_admin(&self) -> (Principal, Principal) {
        let root = self.platform_admin().await;
        let acme = TenantId::parse("acme").unwrap();
        self.service
            .create_tenant(&root, &acme, "Acme", "r")
            .await
            .unwrap();
        let roles = [("tenant_admin".to_string(), "acme".to_string())];
        self.service
            .create_staff(
                &root,
                "acme",
                new_staff("ann", "Ann", &roles, Some(PASSWORD)),
                "r",
            )
            .await
            .unwrap();
        (root, self.login("acme", "ann", PASSWORD).await)
    }
}

#[tokio::test]
async fn a_tenant_admin_runs_their_tenant_and_only_it() {
    let h = harness().await;
    let (root, ann) = h.acme_admin().await;
    let s = &h.service;
    let globex = TenantId::parse("globex").unwrap();
    s.create_tenant(&root, &globex, "Globex", "r")
        .await
        .unwrap();

    let acme = TenantId::parse("acme").unwrap();
    let brand = Brand {
        id: BrandId::parse("fresh").unwrap(),
        name: "Fresh".into(),
        inactive: false,
    };
    s.add_brand(&ann, &acme, brand, "r").await.unwrap();
    let store = IdentityService::parse_store("s01", "Main Street", Some("fresh")).unwrap();
    let tenant = s.add_store(&ann, &acme, store, "r").await.unwrap();
    assert_eq!(tenant.stores.len(), 1);

    let clerk_roles = [("clerk".to_string(), "acme/s01".to_string())];
    let clerk = s
        .create_staff(
            &ann,
            "acme",
            new_staff("cid", "Cid", &clerk_roles, None),
            "r",
        )
        .await
        .unwrap();
    let password = clerk.initial_password.unwrap();
    assert_eq!(password.len(), 20);
    let logged_in = s.login("acme", "cid", &password, None, "r").await.unwrap();
    assert!(logged_in.must_change_password);
    let cid = s.authenticate(&logged_in.access_token).await.unwrap();
    assert!(
        s.authorize(&cid, "acme/s01", WALLET_WRITE, "r")
            .await
            .is_ok()
    );
    let forbidden = s
        .authorize(&cid, "acme/s01", ADJUST, "r")
        .await
        .unwrap_err();
    assert_eq!(forbidden.code, ErrorCode::Forbidden);

    // Nothing of globex, and no platform powers.
    let err = s
        .create_staff(&ann, "globex", new_staff("mole", "Mole", &[], None), "r")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    let err = s
        .create_tenant(&ann, &TenantId::parse("new").unwrap(), "N", "r")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    let admin_elsewhere = [("tenant_admin".to_string(), "globex".to_string())];
    let err = s
        .create_staff(
            &ann,
            "acme",
            new_staff("sly", "Sly", &admin_elsewhere, None),
            "r",
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument, "{err}");
    let platform = [("platform_admin".to_string(), "acme".to_string())];
    let err = s
        .create_staff(&ann, "acme", new_staff("sly", "Sly", &platform, None), "r")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument, "{err}");
    // A clerk cannot make staff.
    let err = s
        .create_staff(&cid, "acme", new_staff("x", "X", &[], None), "r")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    // Usernames are unique per tenant.
    let err = s
        .create_staff(&ann, "acme", new_staff("CID", "Cid", &[], None), "r")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AlreadyExists);
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account_until_time_or_an_admin_releases_it() {
    let h = harness().await;
    let (_root, ann) = h.acme_admin().await;
    let s = &h.service;
    let roles = [("clerk".to_string(), "acme".to_string())];
    let bob = s
        .create_staff(
            &ann,
            "acme",
            new_staff("bob", "Bob", &roles, Some(PASSWORD)),
            "r",
        )
        .await
        .unwrap();
    for attempt in 1..=5 {
        let err = s
            .login("acme", "bob", "wrong-password-1", None, "r")
            .await
            .unwrap_err();
        let want = if attempt < 5 {
            ErrorCode::InvalidCredentials
        } else {
            ErrorCode::AccountLocked
        };
        assert_eq!(err.code, want, "attempt {attempt}");
    }
    let err = s
        .login("acme", "bob", PASSWORD, None, "r")
        .await
        .unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::AccountLocked,
        "even the right password"
    );
    assert!(err.message.contains("locked until"), "{}", err.message);
    h.clock.advance_secs(15 * 60);
    assert!(
        s.login("acme", "bob", PASSWORD, None, "r").await.is_ok(),
        "released by time"
    );

    for _ in 0..5 {
        let _ = s.login("acme", "bob", "wrong-password-1", None, "r").await;
    }
    assert!(s.login("acme", "bob", PASSWORD, None, "r").await.is_err());
    s.unlock(&ann, bob.id, "r").await.unwrap();
    assert!(
        s.login("acme", "bob", PASSWORD, None, "r").await.is_ok(),
        "released by an admin"
    );

    let err = s
        .login("acme", "nobody", PASSWORD, None, "r")
        .await
        .unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::InvalidCredentials,
        "unknown users look the same"
    );
}

#[tokio::test]
async fn a_tenant_that_requires_totp_gets_codes_checked_once_each() {
    let h = harness().await;
    let (_root, ann) = h.acme_admin().await;
    let s = &h.service;
    let acme = TenantId::parse("acme").unwrap();
    let policy = crate::policy::SecurityPolicy {
        require_totp: true,
        ..Default::default()
    };
    s.set_policy(&ann, &acme, policy, "r").await.unwrap();
    let created = s
        .create_staff(
            &ann,
            "acme",
            new_staff("tess", "Tess", &[], Some(PASSWORD)),
            "r",
        )
        .await
        .unwrap();
    assert!(created.totp_uri.unwrap().starts_with("otpauth://totp/"));
    let secret = h
        .store
        .staff(created.id)
        .await
        .unwrap()
        .unwrap()
        .totp
        .unwrap()
        .secret;
    let secret = TotpSecret::from_bytes(secret);
    let secs = (START.0 / 1000) as u64;

    let err = s
        .login("acme", "tess", PASSWORD, None, "r")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TotpRequired);
    let err = s
        .login("acme", "tess", PASSWORD, Some("000000"), "r")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidCredentials);
    let code = secret.code_at(secs).unwrap();
    assert!(
        s.login("acme", "tess", PASSWORD, Some(&code), "r")
            .await
            .is_ok()
    );
    let err = s
        .login("acme", "tess", PASSWORD, Some(&code), "r")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidCredentials, "a code works once");
    h.clock.advance_secs(30);
    let next = secret.code_at(secs + 30).unwrap();
    assert!(
        s.login("acme", "tess", PASSWORD, Some(&next), "r")
            .await
            .is_ok()
    );
    // The admin without a second factor cannot log in any more either.
    let err = s
        .login("acme", "ann", PASSWORD, None, "r")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TotpRequired);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_ends_the_session() {
    let h = harness().await;
    let _ = h.acme_admin().await;
    let s = &h.service;
    let first = s.login("acme", "ann", PASSWORD, None, "r").await.unwrap();
    let second = s.refresh(&first.refresh_token, "r").await.unwrap();
    assert_eq!(second.session, first.session);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert!(s.authenticate(&second.access_token).await.is_ok());

    // The first refresh token again: copied, so the session ends, for every token of it.
    let err = s.refresh(&first.refresh_token, "r").await.unwrap_err();
    assert!(err.message.contains("used before"), "{}", err.message);
    let err = s.authenticate(&second.access_token).await.unwrap_err();
    assert!(err.message.contains("ended"), "{}", err.message);
    assert!(s.refresh(&second.refresh_token, "r").await.is_err());
    assert_eq!(
        s.refresh("rt_garbage", "r").await.unwrap_err().code,
        ErrorCode::InvalidCredentials
    );

    // Access tokens expire; the session outlives them.
    let third = s.login("acme", "ann", PASSWORD, None, "r").await.unwrap();
    h.clock.advance_secs(15 * 60);
    assert!(s.authenticate(&third.access_token).await.is_err());
    let fourth = s.refresh(&third.refresh_token, "r").await.unwrap();
    assert!(s.authenticate(&fourth.access_token).await.is_ok());
    // Remembered as verified, and still refused once it has expired.
    assert!(s.authenticate(&fourth.access_token).await.is_ok());
    h.clock.advance_secs(15 * 60);
    let err = s.authenticate(&fourth.access_token).await.unwrap_err();
    assert!(err.message.contains("expired"), "{}", err.message);
}

#[tokio::test]
async fn logout_and_revocation_work_at_once_and_survive_a_restart() {
    let h = harness().await;
    let (_root, ann) = h.acme_admin().await;
    let s = &h.service;
    let session = s.login("acme", "ann", PASSWORD, None, "r").await.unwrap();
    let me = s.authenticate(&session.access_token).await.unwrap();
    s.logout(&me, "r").await.unwrap();
    assert!(s.authenticate(&session.access_token).await.is_err());
    assert!(s.refresh(&session.refresh_token, "r").await.is_err());

    let acme = TenantId::parse("acme").unwrap();
    let key = s
        .create_api_key(&ann, &acme, "crm", &["partner".to_string()], None, "r")
        .await
        .unwrap();
    let partner = s.authenticate(&key.key).await.unwrap();
    assert_eq!(partner.tenant, "acme");
    assert!(
        s.authorize(&partner, "acme", WALLET_WRITE, "r")
            .await
            .is_ok()
    );
    assert!(
        s.authorize(&partner, "acme", STAFF_WRITE, "r")
            .await
            .is_err()
    );
    let rotated = s.rotate_api_key(&ann, key.id, "r").await.unwrap();
    assert!(
        s.authenticate(&key.key).await.is_err(),
        "the old key stops at once"
    );
    assert!(s.authenticate(&rotated.key).await.is_ok());
    assert!(s.authenticate(&format!("{}x", rotated.key)).await.is_err());

    // Another process on the same store knows the ended session.
    let again = h.replica().await;
    assert!(again.authenticate(&session.access_token).await.is_err());
    assert_eq!(again.jwks(), s.jwks(), "the same signing key");
}

#[tokio::test]
async fn a_key_revoked_by_another_replica_stops_within_the_recheck_time() {
    let h = harness().await;
    let (_root, ann) = h.acme_admin().await;
    let s = &h.service;
    let acme = TenantId::parse("acme").unwrap();
    let key = s
        .create_api_key(&ann, &acme, "till", &["partner".to_string()], None, "r")
        .await
        .unwrap();
    assert!(
        s.authenticate(&key.key).await.is_ok(),
        "read and remembered"
    );
    let other = h.replica().await;
    other.revoke_api_key(&ann, key.id, "r").await.unwrap();
    assert!(
        other.authenticate(&key.key).await.is_err(),
        "the replica that revoked it refuses it at once"
    );
    // This replica trusts its copy for at most KEY_RECHECK_MS, then reads the key again.
    assert!(s.authenticate(&key.key).await.is_ok());
    h.clock.set(Timestamp(s.now().0 + KEY_RECHECK_MS));
    let err = s.authenticate(&key.key).await.unwrap_err();
    assert!(err.message.contains("revoked"), "{}", err.message);
    // A wrong secret for a remembered key is refused like any other.
    let fresh = s
        .create_api_key(&ann, &acme, "till2", &["partner".to_string()], None, "r")
        .await
        .unwrap();
    assert!(s.authenticate(&fresh.key).await.is_ok());
    let (prefix, _) = fresh.key.rsplit_once('_').unwrap();
    assert!(s.authenticate(&format!("{prefix}_wrong")).await.is_err());
}

#[tokio::test]
async fn every_act_is_in_a_chain_that_verifies() {
    let h = harness().await;
    let (_root, ann) = h.acme_admin().await;
    let s = &h.service;
    let _ = s.login("acme", "ann", "wrong-password-1", None, "r").await;
    let _ = s.authorize(&ann, "globex", WALLET_READ, "r-denied").await;
    let records = s.audit_records(&ann, "acme", 1, 100, "r").await.unwrap();
    let actions: Vec<&str> = records.iter().map(|r| r.event.action.as_str()).collect();
    assert!(actions.contains(&"identity.tenant.create"), "{actions:?}");
    assert!(actions.contains(&"identity.staff.create"), "{actions:?}");
    assert!(actions.contains(&"identity.login"), "{actions:?}");
    let failed = records
        .iter()
        .find(|r| matches!(r.event.outcome, crate::audit::Outcome::Failed(_)))
        .unwrap();
    assert_eq!(
        failed.event.outcome,
        crate::audit::Outcome::Failed("INVALID_CREDENTIALS".into())
    );
    for (tenant, verdict) in s.audit_log().verify_all().await.unwrap() {
        assert!(verdict.is_ok(), "{tenant}: {verdict:?}");
    }
    let denied = s
        .audit_records(&ann, "globex", 1, 10, "r")
        .await
        .unwrap_err();
    assert_eq!(
        denied.code,
        ErrorCode::Forbidden,
        "acme's admin cannot read globex's log"
    );
}

#[tokio::test]
async fn a_reset_password_must_be_changed_and_the_policy_applies() {
    let h = harness().await;
    let (_root, ann) = h.acme_admin().await;
    let s = &h.service;
    let bob = s
        .create_staff(
            &ann,
            "acme",
            new_staff("bob", "Bob", &[], Some(PASSWORD)),
            "r",
        )
        .await
        .unwrap();
    let temporary = s.reset_password(&ann, bob.id, "r").await.unwrap();
    assert!(s.login("acme", "bob", PASSWORD, None, "r").await.is_err());
    let logged_in = s.login("acme", "bob", &temporary, None, "r").await.unwrap();
    assert!(logged_in.must_change_password);
    let me = s.authenticate(&logged_in.access_token).await.unwrap();
    let err = s
        .change_password(&me, &temporary, "short", "r")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::PasswordPolicy);
    s.change_password(&me, &temporary, "another-fine-phrase", "r")
        .await
        .unwrap();
    let again = s
        .login("acme", "bob", "another-fine-phrase", None, "r")
        .await
        .unwrap();
    assert!(!again.must_change_password);
    let err = s
        .create_staff(
            &ann,
            "acme",
            new_staff("weak", "W", &[], Some("password123")),
            "r",
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::PasswordPolicy);
}

#[tokio::test]
async fn grants_are_what_the_roles_allow_in_the_domain_asked_and_record_nothing() {
    let h = harness().await;
    let (root, ann) = h.acme_admin().await;
    let s = &h.service;
    let acme = TenantId::parse("acme").unwrap();
    let store = IdentityService::parse_store("s01", "Main Street", None).unwrap();
    s.add_store(&ann, &acme, store, "r").await.unwrap();
    let clerk_roles = [("clerk".to_string(), "acme/s01".to_string())];
    s.create_staff(
        &ann,
        "acme",
        new_staff("cid", "Cid", &clerk_roles, Some(PASSWORD)),
        "r",
    )
    .await
    .unwrap();
    let cid = h.login("acme", "cid", PASSWORD).await;
    let recorded = s.audit_records(&ann, "acme", 1, 1000, "r").await.unwrap();

    let admin = s.grants(&ann, "acme").await.unwrap();
    assert!(admin.contains(&AUDIT_READ) && admin.contains(&ADJUST));
    assert!(
        !admin.contains(&TENANT_WRITE),
        "a tenant admin creates no tenants"
    );
    // A clerk's role is held in its store: nothing in the tenant at large.
    assert!(s.grants(&cid, "acme").await.unwrap().is_empty());
    let in_store = s.grants(&cid, "acme/s01").await.unwrap();
    assert!(in_store.contains(&MEMBER_READ) && in_store.contains(&WALLET_WRITE));
    assert!(!in_store.contains(&AUDIT_READ) && !in_store.contains(&ADJUST));
    for permission in crate::permissions::ALL {
        let allowed = s
            .authorize(&cid, "acme/s01", *permission, "r")
            .await
            .is_ok();
        assert_eq!(allowed, in_store.contains(permission), "{permission:?}");
    }
    // Only one's own tenant; the platform's domain for the platform's staff only.
    let other = s.grants(&ann, "globex").await.unwrap_err();
    assert_eq!(other.code, ErrorCode::Forbidden);
    let platform = s.grants(&ann, "*").await.unwrap_err();
    assert_eq!(platform.code, ErrorCode::Forbidden);
    let bad = s.grants(&cid, "acme/../x").await.unwrap_err();
    assert_eq!(bad.code, ErrorCode::InvalidArgument, "{bad}");
    assert!(s.grants(&root, "*").await.unwrap().contains(&TENANT_WRITE));

    // Asking recorded nothing: what follows the records read before is the clerk's refusals
    // by `authorize` above, each one recorded.
    let after = s.audit_records(&ann, "acme", 1, 1000, "r").await.unwrap();
    let refused = crate::permissions::ALL.len() - in_store.len();
    assert_eq!(after.len(), recorded.len() + refused);
    assert!(
        after[recorded.len()..]
            .iter()
            .all(|r| r.event.actor == cid.subject
                && matches!(r.event.outcome, crate::audit::Outcome::Denied(_)))
    );
}
