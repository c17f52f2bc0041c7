//! The identity stores' conformance suite: every behaviour of the identity ports and casbin's
//! `PolicyStore` is one body, which every adapter passes (`tests/conformance.rs` runs it on
//! the embedded store, a fresh one in a temporary directory, and on ScyllaDB, one keyspace for
//! the run: every body uses names of its own and looks only at them). ScyllaDB's audit
//! buckets are small there, so a few records cross several bucket boundaries.

#![allow(clippy::unwrap_used)] // A panic is a failed assertion with its location.

use loyalty_scylla::conformance;

use crate::audit::{AuditEvent, AuditRecord, ChainHead, Outcome, verify};
use crate::model::{ApiKey, Session, Staff, Tenant, Username};
use crate::opaque::SecretHash;
use crate::policy::{LoginFailures, SecurityPolicy};
use crate::rbac::PolicyRule;
use crate::service::IdentityPorts;
use crate::store::{Applied, StoredKey, StoredReply};
use conformance::unique;
use loyalty_common::ids::{ApiKeyId, SessionId, StaffId, TenantId};
use loyalty_common::{Clock, SystemClock, Timestamp};

/// The ports of one store, and what keeps it alive.
pub struct Stores {
    pub ports: IdentityPorts,
    /// The embedded store's directory, removed after the store closes (fields drop in order).
    pub dir: Option<tempfile::TempDir>,
}

fn now() -> Timestamp {
    SystemClock::default().now()
}

fn tenant(id: &str) -> Tenant {
    Tenant {
        id: TenantId::parse(id).unwrap(),
        name: "Acme".into(),
        brands: vec![],
        stores: vec![],
        policy: SecurityPolicy::default(),
        time_zone: None,
        created_at: Timestamp(1),
        version: 1,
    }
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

fn session(tenant: &str, revoked: bool, expires_at: Timestamp) -> Session {
    Session {
        id: SessionId(ulid::Ulid::new()),
        staff: StaffId(ulid::Ulid::new()),
        tenant: tenant.into(),
        created_at: Timestamp(expires_at.0 - 3_600_000),
        expires_at,
        revoked_at: revoked.then_some(Timestamp(expires_at.0 - 60_000)),
        refresh: SecretHash::of("refresh"),
        replaced: vec![],
        version: 1,
    }
}

fn api_key(tenant: &str) -> ApiKey {
    ApiKey {
        id: ApiKeyId(ulid::Ulid::new()),
        tenant: TenantId::parse(tenant).unwrap(),
        name: "till".into(),
        hash: SecretHash::of("secret"),
        roles: vec!["clerk".into()],
        created_at: Timestamp(1),
        created_by: "staff:1".into(),
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
        version: 1,
    }
}

fn event(n: u64) -> AuditEvent {
    AuditEvent {
        actor: "staff:1".into(),
        action: "ledger.earn".into(),
        target: format!("member:acme/m{n}"),
        outcome: if n.is_multiple_of(3) {
            Outcome::Denied("PERMISSION_DENIED".into())
        } else {
            Outcome::Allowed
        },
        request_id: format!("r{n}"),
        at: Timestamp(n as i64),
    }
}

/// `count` records continuing `head` in `tenant`'s chain.
fn chained(tenant: &str, head: Option<&ChainHead>, count: u64) -> Vec<AuditRecord> {
    let mut records: Vec<AuditRecord> = Vec::new();
    for _ in 0..count {
        let prev = records
            .last()
            .map(AuditRecord::head)
            .or_else(|| head.cloned());
        let n = prev.as_ref().map_or(1, |h| h.seq + 1);
        records.push(AuditRecord::next(tenant, prev.as_ref(), event(n)));
    }
    records
}

fn seqs(records: &[AuditRecord]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

// Tenants.

pub async fn tenants_apply_only_on_the_version_they_read(stores: Stores) {
    let repo = &stores.ports.tenants;
    let mut acme = tenant(&unique("acme"));
    assert_eq!(repo.put_tenant(&acme).await.unwrap(), Applied::Yes);
    assert_eq!(
        repo.put_tenant(&acme).await.unwrap(),
        Applied::Conflict,
        "version 1 exists"
    );
    acme.version = 2;
    acme.policy.require_totp = true;
    assert_eq!(repo.put_tenant(&acme).await.unwrap(), Applied::Yes);
    assert_eq!(
        repo.put_tenant(&acme).await.unwrap(),
        Applied::Conflict,
        "stale"
    );
    let skipped = Tenant {
        version: 4,
        ..acme.clone()
    };
    assert_eq!(repo.put_tenant(&skipped).await.unwrap(), Applied::Conflict);
    let zero = Tenant {
        version: 0,
        ..tenant(&unique("zero"))
    };
    assert_eq!(repo.put_tenant(&zero).await.unwrap(), Applied::Conflict);

    assert_eq!(repo.tenant(&acme.id).await.unwrap(), Some(acme.clone()));
    assert_eq!(repo.tenant(&zero.id).await.unwrap(), None);
    let listed: Vec<Tenant> = repo
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.id == acme.id || t.id == zero.id)
        .collect();
    assert_eq!(
        listed,
        [acme],
        "the newest version, once; never a lost write"
    );
}

// Staff.

pub async fn a_username_is_taken_once_per_tenant(stores: Stores) {
    let repo = &stores.ports.staff;
    let (acme, globex) = (unique("acme"), unique("globex"));
    let ann = staff(&acme, "ann");
    assert_eq!(repo.put_staff(&ann).await.unwrap(), Applied::Yes);
    assert_eq!(
        repo.put_staff(&staff(&acme, "ANN")).await.unwrap(),
        Applied::Conflict,
        "usernames compare lower-cased"
    );
    assert_eq!(
        repo.put_staff(&staff(&globex, "ann")).await.unwrap(),
        Applied::Yes
    );
    let found = repo
        .staff_by_username(&acme, &Username::parse("Ann").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, ann);
    assert_eq!(
        repo.staff_by_username(&acme, &Username::parse("bob").unwrap())
            .await
            .unwrap(),
        None
    );

    let mut locked = found.clone();
    locked.version = 2;
    locked.failures.count = 3;
    assert_eq!(repo.put_staff(&locked).await.unwrap(), Applied::Yes);
    assert_eq!(
        repo.put_staff(&locked).await.unwrap(),
        Applied::Conflict,
        "stale"
    );
    assert_eq!(repo.staff(ann.id).await.unwrap().unwrap().failures.count, 3);
    assert_eq!(repo.staff(StaffId(ulid::Ulid::new())).await.unwrap(), None);
    assert_eq!(repo.staff_of(&acme).await.unwrap(), [locked.clone()]);
    assert!(repo.staff_of(&unique("nobody")).await.unwrap().is_empty());
}

pub async fn a_new_account_that_is_not_written_leaves_its_username_free(stores: Stores) {
    let repo = &stores.ports.staff;
    let acme = unique("acme");
    let ann = staff(&acme, "ann");
    assert_eq!(repo.put_staff(&ann).await.unwrap(), Applied::Yes);
    // Ann's id again as a new account named bob: it exists, so nothing is written...
    let mut bob = staff(&acme, "bob");
    bob.id = ann.id;
    assert_eq!(repo.put_staff(&bob).await.unwrap(), Applied::Conflict);
    // ...and bob is still free, and ann still hers.
    let bob = staff(&acme, "bob");
    assert_eq!(repo.put_staff(&bob).await.unwrap(), Applied::Yes);
    let by_name = |name: &'static str| {
        let repo = repo.clone();
        let acme = acme.clone();
        async move {
            repo.staff_by_username(&acme, &Username::parse(name).unwrap())
                .await
                .unwrap()
                .map(|s| s.id)
        }
    };
    assert_eq!(by_name("ann").await, Some(ann.id));
    assert_eq!(by_name("bob").await, Some(bob.id));
    let listed: Vec<_> = repo
        .staff_of(&acme)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.username.as_str().to_string(), s.id))
        .collect();
    assert_eq!(
        listed,
        [("ann".to_string(), ann.id), ("bob".to_string(), bob.id)]
    );
}

// Sessions.

pub async fn sessions_apply_only_on_the_version_they_read(stores: Stores) {
    let repo = &stores.ports.sessions;
    let mut s = session(&unique("acme"), false, now().plus_secs(3_600));
    assert_eq!(repo.put_session(&s).await.unwrap(), Applied::Yes);
    assert_eq!(repo.put_session(&s).await.unwrap(), Applied::Conflict);
    assert_eq!(repo.session(s.id).await.unwrap(), Some(s.clone()));
    s.version = 2;
    s.replaced.push(s.refresh);
    s.refresh = SecretHash::of("next");
    assert_eq!(repo.put_session(&s).await.unwrap(), Applied::Yes);
    assert_eq!(repo.put_session(&s).await.unwrap(), Applied::Conflict);
    assert_eq!(repo.session(s.id).await.unwrap(), Some(s));
    assert_eq!(
        repo.session(SessionId(ulid::Ulid::new())).await.unwrap(),
        None
    );
}

pub async fn revoked_sessions_are_listed_until_they_expire(stores: Stores) {
    let repo = &stores.ports.sessions;
    let tenant = unique("acme");
    let at = now();
    let live = session(&tenant, false, at.plus_secs(3_600));
    let revoked = session(&tenant, true, at.plus_secs(3_600));
    let revoked_for_days = session(&tenant, true, at.plus_days(20));
    let expired_today = session(&tenant, true, Timestamp(at.0 - 1));
    let expired_long_ago = session(&tenant, true, at.plus_days(-3));
    for s in [
        &live,
        &revoked,
        &revoked_for_days,
        &expired_today,
        &expired_long_ago,
    ] {
        assert_eq!(repo.put_session(s).await.unwrap(), Applied::Yes);
    }
    // A session revoked at its second version.
    let mut later = session(&tenant, false, at.plus_secs(600));
    assert_eq!(repo.put_session(&later).await.unwrap(), Applied::Yes);
    later.revoked_at = Some(at);
    later.version = 2;
    assert_eq!(repo.put_session(&later).await.unwrap(), Applied::Yes);
    // A revocation that lost to another write is not one.
    let mut lost = session(&tenant, false, at.plus_secs(600));
    assert_eq!(repo.put_session(&lost).await.unwrap(), Applied::Yes);
    lost.revoked_at = Some(at);
    lost.version = 3;
    assert_eq!(repo.put_session(&lost).await.unwrap(), Applied::Conflict);

    let ours = [
        live.id,
        revoked.id,
        revoked_for_days.id,
        expired_today.id,
        expired_long_ago.id,
        later.id,
        lost.id,
    ];
    let listed = |when: Timestamp| {
        let repo = repo.clone();
        async move {
            let mut ids: Vec<SessionId> = repo
                .revoked_sessions(when)
                .await
                .unwrap()
                .into_iter()
                .filter(|id| ours.contains(id))
                .collect();
            ids.sort();
            ids
        }
    };
    let mut expected = vec![revoked.id, revoked_for_days.id, later.id];
    expected.sort();
    assert_eq!(listed(at).await, expected);
    assert_eq!(
        listed(at.plus_days(2)).await,
        [revoked_for_days.id],
        "until they expire"
    );
}

// API keys.

pub async fn api_keys_are_versioned_and_listed_by_tenant(stores: Stores) {
    let repo = &stores.ports.api_keys;
    let (acme, globex) = (unique("acme"), unique("globex"));
    let mut first = api_key(&acme);
    let second = api_key(&acme);
    let other = api_key(&globex);
    for key in [&first, &second, &other] {
        assert_eq!(repo.put_api_key(key).await.unwrap(), Applied::Yes);
    }
    assert_eq!(repo.put_api_key(&first).await.unwrap(), Applied::Conflict);
    first.version = 2;
    first.revoked_at = Some(Timestamp(9));
    assert_eq!(repo.put_api_key(&first).await.unwrap(), Applied::Yes);
    assert_eq!(repo.put_api_key(&first).await.unwrap(), Applied::Conflict);
    assert_eq!(repo.api_key(first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(
        repo.api_key(ApiKeyId(ulid::Ulid::new())).await.unwrap(),
        None
    );

    let mut of_acme = repo
        .api_keys_of(&TenantId::parse(&acme).unwrap())
        .await
        .unwrap();
    of_acme.sort_by_key(|k| k.id);
    let mut expected = vec![first, second];
    expected.sort_by_key(|k| k.id);
    assert_eq!(of_acme, expected);
    assert_eq!(
        repo.api_keys_of(&TenantId::parse(&globex).unwrap())
            .await
            .unwrap(),
        [other]
    );
}

// The audit log.

pub async fn audit_appends_continue_the_stored_head_only(stores: Stores) {
    let repo = &stores.ports.audit;
    let acme = unique("acme");
    assert_eq!(repo.head(&acme).await.unwrap(), None);
    assert_eq!(
        repo.append(&acme, None, &[]).await.unwrap(),
        Applied::Yes,
        "nothing to append"
    );
    let records = chained(&acme, None, 2);
    assert_eq!(
        repo.append(&acme, None, &records).await.unwrap(),
        Applied::Yes
    );
    assert_eq!(
        repo.append(&acme, None, &records).await.unwrap(),
        Applied::Conflict,
        "the chain moved on"
    );
    let head = records[1].head();
    assert_eq!(repo.head(&acme).await.unwrap(), Some(head.clone()));
    let third = chained(&acme, Some(&head), 1);
    assert_eq!(
        repo.append(&acme, Some(&head), &third).await.unwrap(),
        Applied::Yes
    );
    // From a head the chain has left behind, and from one with the right number but another
    // hash: both conflict.
    let stale = records[0].head();
    assert_eq!(
        repo.append(&acme, Some(&stale), &chained(&acme, Some(&stale), 1))
            .await
            .unwrap(),
        Applied::Conflict
    );
    let forged = ChainHead {
        seq: 3,
        hash: "00".repeat(32),
    };
    assert_eq!(
        repo.append(&acme, Some(&forged), &chained(&acme, Some(&forged), 1))
            .await
            .unwrap(),
        Applied::Conflict
    );

    let all = repo.records(&acme, 1, 10).await.unwrap();
    assert_eq!(seqs(&all), [1, 2, 3]);
    assert_eq!(repo.records(&acme, 3, 10).await.unwrap(), third);
    assert_eq!(repo.records(&acme, 0, 1).await.unwrap(), records[..1]);
    assert!(repo.records(&acme, 4, 10).await.unwrap().is_empty());
    assert!(repo.records(&acme, 1, 0).await.unwrap().is_empty());
    let stored_head = repo.head(&acme).await.unwrap();
    assert_eq!(stored_head, Some(third[0].head()));
    assert_eq!(verify(&acme, &all, stored_head.as_ref()), Ok(3));
    let prefix = &acme[..acme.len() - 1];
    assert!(
        repo.records(prefix, 1, 10).await.unwrap().is_empty(),
        "no prefix bleed"
    );
    repo.sync().await.unwrap();
}

pub async fn audit_records_read_from_any_sequence_across_buckets(stores: Stores) {
    let repo = &stores.ports.audit;
    let acme = unique("acme");
    // Appends of these sizes cross the boundaries of 4-record buckets every way: within a
    // bucket, running past one, starting one, and running over whole buckets.
    let mut head: Option<ChainHead> = None;
    let mut all: Vec<AuditRecord> = Vec::new();
    for size in [3, 3, 2, 5, 1, 10, 1, 4, 4] {
        let records = chained(&acme, head.as_ref(), size);
        assert_eq!(
            repo.append(&acme, head.as_ref(), &records).await.unwrap(),
            Applied::Yes,
            "append of {size} after {head:?}"
        );
        head = records.last().map(AuditRecord::head);
        assert_eq!(repo.head(&acme).await.unwrap(), head);
        all.extend(records);
    }
    let last = all.len() as u64;
    assert_eq!(last, 33);
    for from in 1..=last + 1 {
        for limit in [1, 2, 3, 5, 9, 40] {
            let start = (from - 1) as usize;
            let expected = &all[start.min(all.len())..(start + limit).min(all.len())];
            assert_eq!(
                repo.records(&acme, from, limit).await.unwrap(),
                expected,
                "from {from}, at most {limit}"
            );
        }
    }
    // Stale heads, at bucket boundaries or not, still conflict; the chain stays whole.
    for stale in [3, 6, 8, 13, 14, 24, 25] {
        let stale = all[stale - 1].head();
        assert_eq!(
            repo.append(&acme, Some(&stale), &chained(&acme, Some(&stale), 2))
                .await
                .unwrap(),
            Applied::Conflict,
            "from {stale:?}"
        );
    }
    let forged = ChainHead {
        seq: last,
        hash: "00".repeat(32),
    };
    assert_eq!(
        repo.append(&acme, Some(&forged), &chained(&acme, Some(&forged), 1))
            .await
            .unwrap(),
        Applied::Conflict,
        "the head's number with another hash"
    );
    let stored = repo.records(&acme, 1, 1_000).await.unwrap();
    assert_eq!(
        verify(&acme, &stored, repo.head(&acme).await.unwrap().as_ref()),
        Ok(last)
    );
}

pub async fn audited_tenants_are_those_with_a_chain(stores: Stores) {
    let repo = &stores.ports.audit;
    let (acme, globex, quiet) = (unique("acme"), unique("globex"), unique("quiet"));
    for tenant in [&acme, &globex] {
        let records = chained(tenant, None, 1);
        assert_eq!(
            repo.append(tenant, None, &records).await.unwrap(),
            Applied::Yes
        );
    }
    let platform = crate::model::PLATFORM;
    let platform_head = repo.head(platform).await.unwrap();
    let records = chained(platform, platform_head.as_ref(), 1);
    assert_eq!(
        repo.append(platform, platform_head.as_ref(), &records)
            .await
            .unwrap(),
        Applied::Yes
    );
    let audited = repo.audited_tenants().await.unwrap();
    assert!(audited.contains(&acme), "{audited:?}");
    assert!(audited.contains(&globex), "{audited:?}");
    assert!(audited.iter().any(|t| t == platform), "{audited:?}");
    assert!(!audited.contains(&quiet), "{audited:?}");
}

// Signing keys, replies, policy rules.

pub async fn signing_keys_are_written_retired_and_listed(stores: Stores) {
    let repo = &stores.ports.keys;
    let kid = unique("k");
    let mut key = StoredKey {
        kid: kid.clone(),
        pkcs8: vec![1, 2, 3],
        created_at: Timestamp(1),
        retired_at: None,
    };
    repo.put_signing_key(&key).await.unwrap();
    let ours = |keys: Vec<StoredKey>| -> Vec<StoredKey> {
        keys.into_iter().filter(|k| k.kid == kid).collect()
    };
    assert_eq!(ours(repo.signing_keys().await.unwrap()), [key.clone()]);
    key.retired_at = Some(Timestamp(2));
    repo.put_signing_key(&key).await.unwrap();
    assert_eq!(ours(repo.signing_keys().await.unwrap()), [key]);
}

pub async fn replies_are_kept_and_replaced(stores: Stores) {
    let repo = &stores.ports.replies;
    let key = unique("idem");
    assert_eq!(repo.reply(&key).await.unwrap(), None);
    let mut reply = StoredReply {
        request_hash: "ab".into(),
        status: 201,
        body: serde_json::json!({"id": "01", "name": "till"}),
        withheld: vec!["secret".into()],
        at: now(),
    };
    repo.put_reply(&key, &reply).await.unwrap();
    assert_eq!(repo.reply(&key).await.unwrap(), Some(reply.clone()));
    reply.status = 200;
    reply.request_hash = "cd".into();
    repo.put_reply(&key, &reply).await.unwrap();
    assert_eq!(repo.reply(&key).await.unwrap(), Some(reply));
}

pub async fn policy_rules_are_added_and_removed_once(stores: Stores) {
    let repo = &stores.ports.policy;
    let subject = format!("staff:{}", unique("s"));
    let grant = PolicyRule::grant(&subject, "clerk", "acme/s01");
    let allow = PolicyRule::allow(&subject, "acme", "ledger", "earn");
    let ours = |rules: Vec<PolicyRule>| -> Vec<PolicyRule> {
        rules
            .into_iter()
            .filter(|r| r.values.first() == Some(&subject))
            .collect()
    };
    assert!(repo.add(&grant).await.unwrap());
    assert!(!repo.add(&grant).await.unwrap(), "already there");
    assert!(repo.add(&allow).await.unwrap());
    let mut loaded = ours(repo.load().await.unwrap());
    loaded.sort_by(|a, b| a.ptype.cmp(&b.ptype));
    assert_eq!(loaded, [grant.clone(), allow.clone()]);
    assert!(repo.remove(&grant).await.unwrap());
    assert!(!repo.remove(&grant).await.unwrap(), "already gone");
    assert_eq!(ours(repo.load().await.unwrap()), [allow]);
}

/// Declares the suite's tests for two store constructors, each an async fn in the calling
/// crate: `identity_conformance!(crate::embedded, crate::scylla)`, the first returning [`Stores`], the
/// second `Option<Stores>` (None when no cluster is configured). Each behaviour runs on both.
#[macro_export]
macro_rules! identity_conformance {
    ($embedded:path, $scylla:path) => {
        ::loyalty_scylla::conformance!(
            tenants_apply_only_on_the_version_they_read,
            $crate::store::conformance::tenants_apply_only_on_the_version_they_read,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            a_username_is_taken_once_per_tenant,
            $crate::store::conformance::a_username_is_taken_once_per_tenant,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            a_new_account_that_is_not_written_leaves_its_username_free,
            $crate::store::conformance::a_new_account_that_is_not_written_leaves_its_username_free,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            sessions_apply_only_on_the_version_they_read,
            $crate::store::conformance::sessions_apply_only_on_the_version_they_read,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            revoked_sessions_are_listed_until_they_expire,
            $crate::store::conformance::revoked_sessions_are_listed_until_they_expire,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            api_keys_are_versioned_and_listed_by_tenant,
            $crate::store::conformance::api_keys_are_versioned_and_listed_by_tenant,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            audit_appends_continue_the_stored_head_only,
            $crate::store::conformance::audit_appends_continue_the_stored_head_only,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            audit_records_read_from_any_sequence_across_buckets,
            $crate::store::conformance::audit_records_read_from_any_sequence_across_buckets,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            audited_tenants_are_those_with_a_chain,
            $crate::store::conformance::audited_tenants_are_those_with_a_chain,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            signing_keys_are_written_retired_and_listed,
            $crate::store::conformance::signing_keys_are_written_retired_and_listed,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            replies_are_kept_and_replaced,
            $crate::store::conformance::replies_are_kept_and_replaced,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            policy_rules_are_added_and_removed_once,
            $crate::store::conformance::policy_rules_are_added_and_removed_once,
            $embedded,
            $scylla
        );
    };
}
