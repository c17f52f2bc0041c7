//! The signing key from the settings: identity replicas that start together on a new store,
//! each making its own key, refuse each other's tokens; given one key they accept them, and a
//! rotation keeps the old key's tokens valid through `verify_keys`.

use super::*;
use crate::store::embedded::EmbeddedIdentityStore;
use loyalty_common::ManualClock;
use loyalty_common::config::Secret;

/// Test keys, as `openssl genpkey -algorithm ed25519 -outform DER | base64 -w0` writes them.
const KEY_A: &str = "MC4CAQAwBQYDK2VwBCIEIAdaZBkBODGUouW2yFak+r+H1br9Jm5WCv+3gF60W2RY";
const KEY_B: &str = "MC4CAQAwBQYDK2VwBCIEIMGL9GaPoGu6t050rk8eLpd4ydQB5Ct9/2WHoB5fR2cI";
const PASSWORD: &str = "plum-kettle-orbit-42";

/// A replica on a store of its own (as two replicas that both found the store without a
/// key), signing with `key` if given and also accepting `verify`.
async fn replica(
    dir: &tempfile::TempDir,
    key: Option<&str>,
    verify: &[&str],
) -> ServiceResult<Arc<IdentityService>> {
    let store = EmbeddedIdentityStore::open(dir.path()).unwrap();
    let config = IdentityConfig {
        signing_key: key.map(Secret::new),
        verify_keys: verify.iter().copied().map(Secret::new).collect(),
        ..IdentityConfig::default()
    };
    let service = IdentityService::start(
        store.ports(),
        ManualClock::new(Timestamp(1_800_000_000_000)),
        config,
        Passwords::for_tests(),
    )
    .await?;
    service
        .ensure_platform_admin("root", Some(PASSWORD))
        .await
        .unwrap();
    Ok(service)
}

async fn token(service: &IdentityService) -> String {
    service
        .login("*", "root", PASSWORD, None, "r")
        .await
        .unwrap()
        .access_token
}

#[tokio::test]
async fn replicas_given_one_key_accept_each_others_tokens() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mine = replica(&dirs[0], None, &[]).await.unwrap();
    let theirs = replica(&dirs[1], None, &[]).await.unwrap();
    let refused = theirs.authenticate(&token(&mine).await).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::Unauthenticated);

    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mine = replica(&dirs[0], Some(KEY_A), &[]).await.unwrap();
    let theirs = replica(&dirs[1], Some(KEY_A), &[]).await.unwrap();
    let principal = theirs.authenticate(&token(&mine).await).await.unwrap();
    assert_eq!(principal.tenant, "*");
}

#[tokio::test]
async fn a_rotated_key_still_verifies_through_verify_keys() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let old = replica(&dirs[0], Some(KEY_A), &[]).await.unwrap();
    let issued_before = token(&old).await;
    let new = replica(&dirs[1], Some(KEY_B), &[KEY_A]).await.unwrap();
    new.authenticate(&issued_before).await.unwrap();
    // Without the old key among verify_keys its tokens are refused.
    let dir = tempfile::tempdir().unwrap();
    let forgetful = replica(&dir, Some(KEY_B), &[]).await.unwrap();
    assert!(forgetful.authenticate(&issued_before).await.is_err());
}

#[tokio::test]
async fn a_key_that_is_not_one_stops_the_start_saying_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    for (key, verify, setting) in [
        ("not base64!", vec![], "identity.signing_key"),
        ("aGVsbG8=", vec![], "identity.signing_key"),
        (KEY_A, vec!["aGVsbG8="], "identity.verify_keys"),
    ] {
        let Err(refused) = replica(&dir, Some(key), &verify).await else {
            panic!("{key} was taken");
        };
        assert_eq!(refused.code, ErrorCode::InvalidArgument);
        assert!(refused.message.contains(setting), "{}", refused.message);
        assert!(
            refused.message.contains("openssl genpkey"),
            "{}",
            refused.message
        );
    }
}
