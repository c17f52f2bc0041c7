use super::*;
use crate::permissions::*;
use std::collections::HashSet;
use std::sync::Mutex;

/// A store in memory, for tests.
#[derive(Default)]
struct MemoryStore(Mutex<HashSet<PolicyRule>>);

#[async_trait]
impl PolicyStore for MemoryStore {
    async fn load(&self) -> ServiceResult<Vec<PolicyRule>> {
        Ok(self.0.lock().unwrap().iter().cloned().collect())
    }
    async fn add(&self, rule: &PolicyRule) -> ServiceResult<bool> {
        Ok(self.0.lock().unwrap().insert(rule.clone()))
    }
    async fn remove(&self, rule: &PolicyRule) -> ServiceResult<bool> {
        Ok(self.0.lock().unwrap().remove(rule))
    }
}

#[test]
fn a_role_held_in_a_tenant_covers_its_stores_only() {
    assert!(domain_covers("acme", "acme"));
    assert!(domain_covers("acme/s01", "acme"));
    assert!(domain_covers("globex", "*"));
    assert!(!domain_covers("acme", "acme/s01"));
    assert!(!domain_covers("acmecorp", "acme"));
    assert!(!domain_covers("acme/s02", "acme/s01"));
}

#[tokio::test]
async fn roles_are_scoped_to_their_tenant_or_store() {
    let store = Arc::new(MemoryStore::default());
    let auth = Authorizer::new(store.clone()).await.unwrap();
    auth.grant("staff:ann", "tenant_admin", "acme")
        .await
        .unwrap();
    auth.grant("staff:cid", "clerk", "acme/s01").await.unwrap();
    auth.grant("staff:pat", "platform_admin", "*")
        .await
        .unwrap();

    let may = |s: &'static str, d: &'static str, p: Permission| {
        let auth = &auth;
        async move { auth.allows(s, d, p).await.unwrap() }
    };
    assert!(may("staff:ann", "acme", RULES_WRITE).await);
    assert!(
        may("staff:ann", "acme/s07", WALLET_WRITE).await,
        "every store of the tenant"
    );
    assert!(
        !may("staff:ann", "globex", WALLET_READ).await,
        "not another tenant"
    );
    assert!(!may("staff:ann", "acme", TENANT_WRITE).await);
    assert!(may("staff:cid", "acme/s01", WALLET_WRITE).await);
    assert!(
        !may("staff:cid", "acme/s02", WALLET_WRITE).await,
        "not another store"
    );
    assert!(
        !may("staff:cid", "acme", WALLET_WRITE).await,
        "not the whole tenant"
    );
    assert!(
        !may("staff:cid", "acme/s01", ADJUST).await,
        "clerks do not adjust"
    );
    assert!(!may("staff:cid", "acme/s01", PII_READ).await);
    assert!(may("staff:pat", "globex", TENANT_WRITE).await);
    assert!(!may("staff:nobody", "acme", WALLET_READ).await);

    let err = auth
        .require("staff:cid", "acme/s01", ADJUST)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert_eq!(store.load().await.unwrap().len(), 3, "grants are stored");
}

#[tokio::test]
async fn custom_roles_apply_in_their_tenant_and_grants_survive_a_reload() {
    let store = Arc::new(MemoryStore::default());
    let auth = Authorizer::new(store.clone()).await.unwrap();
    auth.allow_role("acme:desk", "acme", WALLET_READ)
        .await
        .unwrap();
    auth.allow_role("acme:desk", "acme", MEMBER_READ)
        .await
        .unwrap();
    auth.grant("staff:dee", "acme:desk", "acme").await.unwrap();
    auth.grant("staff:eve", "acme:desk", "globex")
        .await
        .unwrap();
    assert!(
        auth.allows("staff:dee", "acme/s03", WALLET_READ)
            .await
            .unwrap()
    );
    assert!(
        !auth
            .allows("staff:dee", "acme", WALLET_WRITE)
            .await
            .unwrap()
    );
    assert!(
        !auth
            .allows("staff:eve", "globex", WALLET_READ)
            .await
            .unwrap(),
        "acme's custom role means nothing in globex"
    );
    assert!(auth.revoke("staff:dee", "acme:desk", "acme").await.unwrap());
    assert!(
        !auth.allows("staff:dee", "acme", WALLET_READ).await.unwrap(),
        "at once"
    );

    // Another replica, or a restart, reads the same rules from the store.
    auth.grant("staff:dee", "auditor", "acme").await.unwrap();
    let replica = Authorizer::new(store).await.unwrap();
    assert!(
        replica
            .allows("staff:dee", "acme", AUDIT_READ)
            .await
            .unwrap()
    );
    assert_eq!(replica.roles_in("staff:dee", "acme").await, ["auditor"]);
}

#[tokio::test]
async fn every_built_in_role_has_rules_and_none_can_create_tenants_but_the_platform_admin() {
    let auth = Authorizer::new(Arc::new(MemoryStore::default()))
        .await
        .unwrap();
    for role in built_in_roles() {
        let subject = format!("staff:{role}");
        auth.grant(&subject, role, "acme").await.unwrap();
        let creates_tenants = auth.allows(&subject, "acme", TENANT_WRITE).await.unwrap();
        assert_eq!(creates_tenants, role == "platform_admin", "{role}");
    }
    assert_eq!(
        built_in_roles(),
        [
            "platform_admin",
            "tenant_admin",
            "store_manager",
            "clerk",
            "auditor",
            "partner"
        ]
    );
}

/// Head office sets flash sales up; tills, e-shops and partners claim for members, as they
/// redeem coupons; everyone who reads coupons reads sales, and an auditor reads claims too.
#[tokio::test]
async fn head_office_creates_flash_sales_and_tills_claim() {
    let auth = Authorizer::new(Arc::new(MemoryStore::default()))
        .await
        .unwrap();
    for role in built_in_roles() {
        let subject = format!("staff:{role}");
        auth.grant(&subject, role, "acme").await.unwrap();
        let may = |permission| {
            let auth = &auth;
            let subject = subject.clone();
            async move { auth.allows(&subject, "acme", permission).await.unwrap() }
        };
        let head_office = matches!(role, "platform_admin" | "tenant_admin");
        let till = !matches!(role, "auditor");
        assert_eq!(may(SALES_WRITE).await, head_office, "{role}");
        assert!(may(SALES_READ).await, "{role}");
        assert_eq!(may(CLAIMS_WRITE).await, till, "{role}");
        assert!(may(CLAIMS_READ).await, "{role}");
        // Whoever may redeem may claim.
        assert_eq!(may(CLAIMS_WRITE).await, may(REDEEM).await, "{role}");
    }
}

#[tokio::test]
async fn a_replica_behind_the_store_catches_up_when_the_store_says_it_is_done_already() {
    let store = Arc::new(MemoryStore::default());
    let a = Authorizer::new(store.clone()).await.unwrap();
    let b = Authorizer::new(store).await.unwrap();
    // A revokes; B missed the announcement and still lets the role act.
    a.grant("staff:ann", "tenant_admin", "acme").await.unwrap();
    b.reload().await.unwrap();
    assert!(a.revoke("staff:ann", "tenant_admin", "acme").await.unwrap());
    assert!(b.allows("staff:ann", "acme", RULES_WRITE).await.unwrap());
    // Revoking again on B: not there any more, so B reads the rules again.
    assert!(!b.revoke("staff:ann", "tenant_admin", "acme").await.unwrap());
    assert!(!b.allows("staff:ann", "acme", RULES_WRITE).await.unwrap());
    // Likewise a grant made elsewhere that B tries again.
    assert!(a.grant("staff:bo", "tenant_admin", "acme").await.unwrap());
    assert!(!b.allows("staff:bo", "acme", RULES_WRITE).await.unwrap());
    assert!(!b.grant("staff:bo", "tenant_admin", "acme").await.unwrap());
    assert!(b.allows("staff:bo", "acme", RULES_WRITE).await.unwrap());
}

#[tokio::test]
async fn a_change_the_store_makes_on_a_replica_behind_it_is_reported_as_made() {
    let store = Arc::new(MemoryStore::default());
    let a = Authorizer::new(store.clone()).await.unwrap();
    let b = Authorizer::new(store).await.unwrap();
    // A grants; B missed it. Revoking on B removes the stored rule: a change to announce.
    assert!(a.grant("staff:cy", "tenant_admin", "acme").await.unwrap());
    assert!(b.revoke("staff:cy", "tenant_admin", "acme").await.unwrap());
    a.reload().await.unwrap();
    assert!(!a.allows("staff:cy", "acme", RULES_WRITE).await.unwrap());
    // A repeat on an up-to-date replica is no change.
    assert!(!b.revoke("staff:cy", "tenant_admin", "acme").await.unwrap());
}
