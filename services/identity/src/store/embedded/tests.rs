use super::*;
use crate::audit::{AuditEvent, Outcome};
use crate::opaque::SecretHash;
use crate::policy::{LoginFailures, SecurityPolicy};
use loyalty_common::ids::TenantId;

fn store() -> (EmbeddedIdentityStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (EmbeddedIdentityStore::open(dir.path()).unwrap(), dir)
}

fn staff(tenant: &str, username: &str) -> Staff {
    Staff {
        id: StaffId(ulid::Ulid::new()),
        tenant: tenant.into(),
        username: Username::parse(username).unwrap(),
        display_name: username.into(),
        password_hash: "$argon2id$...".into(),
        must_change_password: false,
        totp: None,
        failures: LoginFailures::default(),
        disabled: false,
        sessions_ended_at: None,
        created_at: Timestamp(1),
        version: 1,
    }
}

#[tokio::test]
async fn writes_apply_only_on_the_version_they_read() {
    let (store, _dir) = store();
    let mut tenant = Tenant {
        id: TenantId::parse("acme").unwrap(),
        name: "Acme".into(),
        brands: vec![],
        stores: vec![],
        policy: SecurityPolicy::default(),
        time_zone: None,
        created_at: Timestamp(1),
        version: 1,
    };
    assert_eq!(store.put_tenant(&tenant).await.unwrap(), Applied::Yes);
    assert_eq!(
        store.put_tenant(&tenant).await.unwrap(),
        Applied::Conflict,
        "exists"
    );
    tenant.version = 2;
    tenant.policy.require_totp = true;
    assert_eq!(store.put_tenant(&tenant).await.unwrap(), Applied::Yes);
    assert_eq!(
        store.put_tenant(&tenant).await.unwrap(),
        Applied::Conflict,
        "stale"
    );
    let read = store.tenant(&tenant.id).await.unwrap().unwrap();
    assert!(read.policy.require_totp);
    assert_eq!(store.tenants().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_username_is_taken_once_per_tenant() {
    let (store, _dir) = store();
    let ann = staff("acme", "ann");
    assert_eq!(store.put_staff(&ann).await.unwrap(), Applied::Yes);
    assert_eq!(
        store.put_staff(&staff("acme", "ANN")).await.unwrap(),
        Applied::Conflict,
        "usernames compare lower-cased"
    );
    assert_eq!(
        store.put_staff(&staff("globex", "ann")).await.unwrap(),
        Applied::Yes
    );
    let found = store
        .staff_by_username("acme", &Username::parse("Ann").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, ann.id);
    let mut locked = found.clone();
    locked.version = 2;
    locked.failures.count = 3;
    assert_eq!(store.put_staff(&locked).await.unwrap(), Applied::Yes);
    assert_eq!(
        store.staff(ann.id).await.unwrap().unwrap().failures.count,
        3
    );
    assert_eq!(store.staff_of("acme").await.unwrap().len(), 1);
}

#[tokio::test]
async fn revoked_sessions_are_listed_until_they_expire() {
    let (store, _dir) = store();
    let session = |revoked: bool, expires: i64| Session {
        id: SessionId(ulid::Ulid::new()),
        staff: StaffId(ulid::Ulid::new()),
        tenant: "acme".into(),
        created_at: Timestamp(0),
        expires_at: Timestamp(expires),
        revoked_at: revoked.then_some(Timestamp(5)),
        refresh: SecretHash::of("x"),
        replaced: vec![],
        version: 1,
    };
    let live = session(false, 100);
    let revoked = session(true, 100);
    let expired = session(true, 10);
    for s in [&live, &revoked, &expired] {
        assert_eq!(store.put_session(s).await.unwrap(), Applied::Yes);
    }
    assert_eq!(
        store.revoked_sessions(Timestamp(50)).await.unwrap(),
        [revoked.id]
    );
}

#[tokio::test]
async fn audit_appends_continue_the_stored_head_only() {
    let (store, _dir) = store();
    let event = |n: u64| AuditEvent {
        actor: "staff:1".into(),
        action: "ledger.earn".into(),
        target: format!("member:acme/m{n}"),
        outcome: Outcome::Allowed,
        request_id: format!("r{n}"),
        at: Timestamp(n as i64),
    };
    let first = AuditRecord::next("acme", None, event(1));
    let second = AuditRecord::next("acme", Some(&first.head()), event(2));
    let records = [first.clone(), second.clone()];
    assert_eq!(
        store.append("acme", None, &records).await.unwrap(),
        Applied::Yes
    );
    assert_eq!(
        store.append("acme", None, &records).await.unwrap(),
        Applied::Conflict,
        "the chain moved on"
    );
    let third = AuditRecord::next("acme", Some(&second.head()), event(3));
    let head = second.head();
    assert_eq!(
        store
            .append("acme", Some(&head), std::slice::from_ref(&third))
            .await
            .unwrap(),
        Applied::Yes
    );
    let all = store.records("acme", 1, 10).await.unwrap();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        store.records("acme", 3, 10).await.unwrap(),
        std::slice::from_ref(&third)
    );
    let stored_head = store.head("acme").await.unwrap();
    assert_eq!(
        crate::audit::verify("acme", &all, stored_head.as_ref()),
        Ok(3)
    );
    assert_eq!(store.audited_tenants().await.unwrap(), ["acme"]);
    assert!(
        store.records("acm", 1, 10).await.unwrap().is_empty(),
        "no prefix bleed"
    );
}

#[tokio::test]
async fn policy_rules_and_keys_round_trip() {
    let (store, dir) = store();
    let rule = PolicyRule::grant("staff:1", "clerk", "acme/s01");
    assert!(store.add(&rule).await.unwrap());
    assert!(!store.add(&rule).await.unwrap());
    let key = StoredKey {
        kid: "k1".into(),
        pkcs8: vec![1, 2, 3],
        created_at: Timestamp(1),
        retired_at: None,
    };
    store.put_signing_key(&key).await.unwrap();
    drop(store);
    let store = EmbeddedIdentityStore::open(dir.path()).unwrap();
    assert_eq!(store.load().await.unwrap(), std::slice::from_ref(&rule));
    assert_eq!(store.signing_keys().await.unwrap(), [key]);
    assert!(store.remove(&rule).await.unwrap());
    assert!(store.load().await.unwrap().is_empty());
}
