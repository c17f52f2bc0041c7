//! The birthday index: rows written with the profile that holds them, moved with it, dropped
//! when given up (a change, its removal, erasure), paged in member order within one tenant.

use super::*;

/// A birthday index (unique per run, as the keyspace outlives a test).
fn birthday(n: u8) -> [u8; 32] {
    let mut hash = [n; 32];
    hash[..16].copy_from_slice(&ulid::Ulid::new().to_bytes());
    hash
}

/// The next version of `m`'s profile, holding `held`, giving up `released`.
fn born(
    t: &str,
    m: &str,
    version: u64,
    held: Option<[u8; 32]>,
    released: Option<[u8; 32]>,
) -> MemberWrite {
    let mut p = profile(t, m, version, vec![]);
    p.birthday = held;
    MemberWrite {
        tenant: t.into(),
        member: m.into(),
        profile: Some(p),
        released_birthday: released,
        ..MemberWrite::default()
    }
}

/// A new member holding `held`.
fn created_born(t: &str, m: &str, held: [u8; 32]) -> MemberWrite {
    let mut w = created(t, m, vec![]);
    if let Some(p) = w.profile.as_mut() {
        p.birthday = Some(held);
    }
    w
}

async fn born_on(repo: &Arc<dyn MemberRepository>, t: &str, hash: &[u8; 32]) -> Vec<String> {
    repo.birthday_members(&tid(t), hash, None, 100)
        .await
        .unwrap()
}

pub async fn birthday_rows_follow_the_profile(stores: Stores) {
    let repo = stores.repo;
    let (t, m) = (unique("t"), unique("m"));
    let (march, june, july) = (birthday(1), birthday(2), birthday(3));
    assert!(born_on(&repo, &t, &march).await.is_empty());
    assert_eq!(
        repo.write(created_born(&t, &m, march)).await.unwrap(),
        Written::Yes
    );
    assert_eq!(born_on(&repo, &t, &march).await, [m.as_str()]);

    // A write that keeps the birthday (a key rotation, another field) keeps the row.
    assert_eq!(
        repo.write(born(&t, &m, 2, Some(march), None))
            .await
            .unwrap(),
        Written::Yes
    );
    assert_eq!(born_on(&repo, &t, &march).await, [m.as_str()]);

    // Changed: the row moves.
    let moved = born(&t, &m, 3, Some(june), Some(march));
    assert_eq!(repo.write(moved).await.unwrap(), Written::Yes);
    assert!(born_on(&repo, &t, &march).await.is_empty());
    assert_eq!(born_on(&repo, &t, &june).await, [m.as_str()]);

    // A refused write (stale) leaves no row of its own.
    let stale = born(&t, &m, 3, Some(july), Some(june));
    assert_eq!(repo.write(stale).await.unwrap(), Written::Stale);
    assert!(born_on(&repo, &t, &july).await.is_empty());
    assert_eq!(born_on(&repo, &t, &june).await, [m.as_str()]);

    // Removed: no row.
    let removed = born(&t, &m, 4, None, Some(june));
    assert_eq!(repo.write(removed).await.unwrap(), Written::Yes);
    assert!(born_on(&repo, &t, &june).await.is_empty());

    // Set again, then erased: the erasure's own write drops it.
    let again = born(&t, &m, 5, Some(july), None);
    assert_eq!(repo.write(again).await.unwrap(), Written::Yes);
    assert_eq!(born_on(&repo, &t, &july).await, [m.as_str()]);
    let mut erased = born(&t, &m, 6, None, Some(july));
    if let Some(p) = erased.profile.as_mut() {
        p.sealed.clear();
        p.erased_at = Some(Timestamp(1_800_000_000_100));
    }
    assert_eq!(repo.write(erased).await.unwrap(), Written::Yes);
    assert!(born_on(&repo, &t, &july).await.is_empty());
    let stores = Stores { repo, ..stores };
    let repo = stores.reopen().await.repo;
    assert!(born_on(&repo, &t, &july).await.is_empty());
    assert!(born_on(&repo, &t, &march).await.is_empty());
}

pub async fn birthday_rows_of_a_refused_claim_or_batch(stores: Stores) {
    let repo = stores.repo;
    let (t, a, b) = (unique("t"), unique("a"), unique("b"));
    let (phone, day) = (phone(1), birthday(1));
    assert_eq!(
        repo.write(created(&t, &a, vec![phone])).await.unwrap(),
        Written::Yes
    );
    // Refused for a phone another member holds: its birthday shows nowhere.
    let mut taken = created_born(&t, &b, day);
    if let Some(p) = taken.profile.as_mut() {
        p.indexes = vec![phone];
    }
    assert_eq!(
        repo.write(taken).await.unwrap(),
        Written::Taken(IndexKind::Phone, a.clone())
    );
    assert!(born_on(&repo, &t, &day).await.is_empty());

    // A batch of new members (an import) writes each one's row; all or nothing (a merge)
    // moves one member's row out and another's in.
    let outcomes = repo
        .write_many(
            vec![created_born(&t, &b, day), born(&t, &a, 2, Some(day), None)],
            None,
        )
        .await
        .unwrap();
    assert_eq!(outcomes, [Written::Yes, Written::Yes]);
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(born_on(&repo, &t, &day).await, both);
    let merge = vec![
        born(&t, &b, 2, None, Some(day)),
        born(&t, &a, 3, Some(day), None),
    ];
    assert_eq!(repo.write_all(merge, None).await.unwrap(), Written::Yes);
    assert_eq!(born_on(&repo, &t, &day).await, [a.as_str()]);
    // A refused all-or-nothing batch writes none of its rows.
    let other = birthday(2);
    let refused = vec![
        born(&t, &b, 3, Some(other), None),
        born(&t, &a, 3, Some(other), Some(day)),
    ];
    assert_eq!(repo.write_all(refused, None).await.unwrap(), Written::Stale);
    assert!(born_on(&repo, &t, &other).await.is_empty());
    assert_eq!(born_on(&repo, &t, &day).await, [a]);
}

pub async fn birthday_pages_in_member_order_per_tenant(stores: Stores) {
    let repo = stores.repo;
    let (t, other_tenant) = (unique("t"), unique("t"));
    let (day, other_day) = (birthday(1), birthday(2));
    let members: Vec<String> = (0..7).map(|i| format!("m{i:02}")).collect();
    // Written out of order; m03 was born on another day.
    for i in [4, 1, 6, 0, 5, 2] {
        let w = created_born(&t, &members[i], day);
        assert_eq!(repo.write(w).await.unwrap(), Written::Yes);
    }
    let w = created_born(&t, &members[3], other_day);
    assert_eq!(repo.write(w).await.unwrap(), Written::Yes);
    // The same index in another tenant (its key differs in life; the store keeps them apart
    // regardless).
    let w = created_born(&other_tenant, "m99", day);
    assert_eq!(repo.write(w).await.unwrap(), Written::Yes);

    let page = |after: Option<&'static str>, limit: usize| {
        let (repo, t) = (Arc::clone(&repo), t.clone());
        async move {
            repo.birthday_members(&tid(&t), &day, after, limit)
                .await
                .unwrap()
        }
    };
    assert_eq!(page(None, 3).await, ["m00", "m01", "m02"]);
    assert_eq!(page(Some("m02"), 3).await, ["m04", "m05", "m06"]);
    assert_eq!(page(Some("m01"), 10).await, ["m02", "m04", "m05", "m06"]);
    assert!(page(Some("m06"), 10).await.is_empty());
    assert!(page(None, 0).await.is_empty());
    assert_eq!(born_on(&repo, &t, &other_day).await, ["m03"]);
    assert_eq!(born_on(&repo, &other_tenant, &day).await, ["m99"]);
    assert!(born_on(&repo, &other_tenant, &other_day).await.is_empty());
}
