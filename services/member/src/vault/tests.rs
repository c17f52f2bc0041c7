use super::*;
use proptest::prelude::*;

fn master() -> MasterKey {
    MasterKey::generate().unwrap().0
}

#[test]
fn a_sealed_field_opens_only_as_itself() {
    let master = master();
    let (ring, _) = TenantRing::create(&master, "acme").unwrap();
    let (alice, _) = ring.new_member_key("alice").unwrap();
    let sealed = alice.seal("phone", "13812345678").unwrap();
    assert_eq!(alice.open("phone", &sealed).unwrap(), "13812345678");
    assert!(
        !sealed.windows(11).any(|w| w == b"13812345678"),
        "no plaintext at rest"
    );
    assert_eq!(alice.open("email", &sealed), Err(VaultError::Unreadable));
    let (bob, _) = ring.new_member_key("bob").unwrap();
    assert_eq!(bob.open("phone", &sealed), Err(VaultError::Unreadable));
    let mut altered = sealed.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    assert_eq!(alice.open("phone", &altered), Err(VaultError::Unreadable));
    assert_eq!(alice.open("phone", &[1, 2, 3]), Err(VaultError::Unreadable));
}

#[test]
fn keys_round_trip_through_storage_and_belong_to_their_tenant() {
    let master = master();
    let (ring, stored) = TenantRing::create(&master, "acme").unwrap();
    let (alice, wrapped) = ring.new_member_key("alice").unwrap();
    let sealed = alice.seal("name", "王小明").unwrap();

    let reopened = TenantRing::open(&master, "acme", std::slice::from_ref(&stored)).unwrap();
    let again = reopened.member_key("alice", &wrapped).unwrap();
    assert_eq!(again.open("name", &sealed).unwrap(), "王小明");
    assert!(
        reopened.member_key("bob", &wrapped).is_err(),
        "another member"
    );
    assert!(
        TenantRing::open(&master, "globex", std::slice::from_ref(&stored)).is_err(),
        "another tenant's key does not open as this one's"
    );
    let other_master = self::master();
    assert!(TenantRing::open(&other_master, "acme", &[stored]).is_err());
}

#[test]
fn rotation_keeps_every_profile_readable_and_rewraps_only_member_keys() {
    let master = master();
    let (mut ring, v1) = TenantRing::create(&master, "acme").unwrap();
    let (alice, wrapped) = ring.new_member_key("alice").unwrap();
    let sealed = alice.seal("email", "alice@example.cn").unwrap();
    let v2 = ring.rotate(&master).unwrap();
    assert_eq!((v1.version, v2.version, ring.current()), (1, 2, 2));

    // Readable through the old wrapping, before the rewrap has reached it.
    let ring = TenantRing::open(&master, "acme", &[v1, v2]).unwrap();
    let key = ring.member_key("alice", &wrapped).unwrap();
    assert_eq!(key.open("email", &sealed).unwrap(), "alice@example.cn");
    // Rewrapped under version 2: the sealed field is untouched and still opens.
    let rewrapped = ring.rewrap("alice", &wrapped).unwrap().unwrap();
    assert_eq!(rewrapped.tenant_version, 2);
    assert!(
        ring.rewrap("alice", &rewrapped).unwrap().is_none(),
        "current"
    );
    let key = ring.member_key("alice", &rewrapped).unwrap();
    assert_eq!(key.open("email", &sealed).unwrap(), "alice@example.cn");
    // New members get the new version.
    let (_, bob) = ring.new_member_key("bob").unwrap();
    assert_eq!(bob.tenant_version, 2);
}

#[test]
fn without_its_member_key_a_profile_cannot_be_read() {
    // Erasure deletes the wrapped member key: neither the tenant's keys nor the master key
    // can open the member's fields any more.
    let master = master();
    let (ring, _) = TenantRing::create(&master, "acme").unwrap();
    let (alice, _wrapped_and_then_deleted) = ring.new_member_key("alice").unwrap();
    let sealed = alice.seal("id_number", "110101199003071234").unwrap();
    drop(alice);
    let (replacement, _) = ring.new_member_key("alice").unwrap();
    assert_eq!(
        replacement.open("id_number", &sealed),
        Err(VaultError::Unreadable)
    );
}

proptest! {
    #[test]
    fn any_text_round_trips(value in "\\PC{0,64}", field in "[a-z_]{1,16}") {
        let master = master();
        let (ring, _) = TenantRing::create(&master, "t").unwrap();
        let (key, _) = ring.new_member_key("m").unwrap();
        let sealed = key.seal(&field, &value).unwrap();
        prop_assert_eq!(key.open(&field, &sealed).unwrap(), value);
    }
}
