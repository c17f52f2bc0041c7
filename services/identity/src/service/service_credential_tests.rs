//! The service credential: the platform's own work, come from another process, is the
//! platform service, which may pay into wallets and read and tag members in any tenant and
//! nothing else; a credential too short to be secret stops the start; unset, nothing is
//! accepted as the platform.

use super::tests::harness;
use super::*;
use crate::permissions::*;
use crate::store::embedded::EmbeddedIdentityStore;
use loyalty_common::ManualClock;
use loyalty_common::config::Secret;

const CREDENTIAL: &str = "Qk9XbC1vZi1wZXRhbHMtaW4tYS13aW5kLTIwMjY=";

async fn with_credential(
    store: &EmbeddedIdentityStore,
    credential: &str,
) -> ServiceResult<Arc<IdentityService>> {
    let config = IdentityConfig {
        service_credential: Some(Secret::new(credential)),
        ..IdentityConfig::default()
    };
    IdentityService::start(
        store.ports(),
        ManualClock::new(Timestamp(1_800_000_000_000)),
        config,
        Passwords::for_tests(),
    )
    .await
}

#[tokio::test]
async fn the_service_credential_pays_and_reads_in_any_tenant_and_does_nothing_else() {
    let h = harness().await;
    let service = with_credential(&h.store, CREDENTIAL).await.unwrap();
    let platform = service.authenticate(CREDENTIAL).await.unwrap();
    assert_eq!(platform, Principal::service());
    assert_eq!(platform.subject, SERVICE_SUBJECT);

    for domain in ["acme", "globex", "acme/s01"] {
        for permission in [WALLET_READ, WALLET_WRITE, ADJUST, MEMBER_READ, MEMBER_WRITE] {
            service
                .authorize(&platform, domain, permission, "r")
                .await
                .unwrap_or_else(|e| panic!("{permission:?} in {domain}: {}", e.message));
        }
    }
    for permission in [
        PII_READ,
        STAFF_WRITE,
        ROLES_WRITE,
        API_KEYS_WRITE,
        AUDIT_READ,
        TENANT_WRITE,
        RULES_WRITE,
        PROGRAM_WRITE,
        CAMPAIGNS_WRITE,
        CAMPAIGN_APPROVALS,
    ] {
        let refused = service.authorize(&platform, "acme", permission, "r").await;
        assert_eq!(
            refused.unwrap_err().code,
            ErrorCode::Forbidden,
            "{permission:?}"
        );
    }

    // Close is not enough, and a service without the credential configured accepts none.
    let near = format!("{CREDENTIAL}x");
    assert_eq!(
        service.authenticate(&near).await.unwrap_err().code,
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        h.service.authenticate(CREDENTIAL).await.unwrap_err().code,
        ErrorCode::Unauthenticated
    );
}

#[tokio::test]
async fn nobody_can_be_granted_the_platform_service_role() {
    let h = harness().await;
    let (root, ann) = h.acme_admin().await;
    let ann_id = match ann.kind {
        PrincipalKind::Staff { id, .. } => id,
        _ => unreachable!("a login is a staff member"),
    };
    let subject = IdentityService::staff_subject(ann_id);
    for granter in [&root, &ann] {
        let refused = h
            .service
            .grant(granter, "acme", &subject, "platform_service", "acme", "r")
            .await
            .unwrap_err();
        assert_eq!(
            refused.code,
            ErrorCode::InvalidArgument,
            "{}",
            refused.message
        );
    }
}

#[tokio::test]
async fn a_short_service_credential_stops_the_start_and_says_what_to_do() {
    let h = harness().await;
    let Err(refused) = with_credential(&h.store, "too-short").await else {
        panic!("a nine-character credential was accepted");
    };
    assert_eq!(refused.code, ErrorCode::InvalidArgument);
    assert!(refused.message.contains("identity.service_credential"));
    assert!(refused.message.contains("32"));
}
