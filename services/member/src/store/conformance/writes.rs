//! Writes: profiles, index claims, facts, orders, batches, and writes that race.

use super::*;

pub async fn profile_write_and_stale_conflict(stores: Stores) {
    let repo = stores.repo;
    let (t, m) = (unique("t"), unique("m"));
    assert_eq!(repo.profile(&tid(&t), &mid(&m)).await.unwrap(), None);
    assert_eq!(
        repo.write(created(&t, &m, vec![])).await.unwrap(),
        Written::Yes
    );
    assert_eq!(
        repo.profile(&tid(&t), &mid(&m)).await.unwrap(),
        Some(profile(&t, &m, 1, vec![]))
    );
    let (p, f) = repo.member(&tid(&t), &mid(&m)).await.unwrap();
    assert_eq!((p.unwrap().version, f.unwrap().version), (1, 1));

    // A second writer that read nothing: stale.
    let again = MemberWrite {
        events: vec![],
        ..created(&t, &m, vec![])
    };
    assert_eq!(repo.write(again).await.unwrap(), Written::Stale);

    let update = MemberWrite {
        tenant: t.clone(),
        member: m.clone(),
        profile: Some(profile(&t, &m, 2, vec![])),
        ..MemberWrite::default()
    };
    assert_eq!(repo.write(update.clone()).await.unwrap(), Written::Yes);
    assert_eq!(repo.write(update).await.unwrap(), Written::Stale);
    assert_eq!(
        repo.profile(&tid(&t), &mid(&m))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    // The facts were not touched by the profile's writes.
    assert_eq!(
        repo.facts(&tid(&t), &mid(&m)).await.unwrap().unwrap(),
        facts(&m, 1)
    );
}

pub async fn index_claim_and_taken(stores: Stores) {
    let repo = stores.repo;
    let (t, a, b) = (unique("t"), unique("a"), unique("b"));
    let phone = phone(1);
    assert_eq!(
        repo.write(created(&t, &a, vec![phone])).await.unwrap(),
        Written::Yes
    );
    assert_eq!(
        repo.member_by_index(&tid(&t), phone.0, &phone.1)
            .await
            .unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        repo.write(created(&t, &b, vec![phone])).await.unwrap(),
        Written::Taken(IndexKind::Phone, a.clone())
    );
    // Nothing of the refused write shows.
    assert_eq!(repo.profile(&tid(&t), &mid(&b)).await.unwrap(), None);
    assert_eq!(
        repo.member_by_index(&tid(&t), phone.0, &phone.1)
            .await
            .unwrap(),
        Some(a.clone())
    );
    // The holder writing its profile again keeps it.
    let again = MemberWrite {
        tenant: t.clone(),
        member: a.clone(),
        profile: Some(profile(&t, &a, 2, vec![phone])),
        ..MemberWrite::default()
    };
    assert_eq!(repo.write(again).await.unwrap(), Written::Yes);
    // Another tenant has indexes of its own.
    let other = unique("t");
    assert_eq!(
        repo.write(created(&other, &b, vec![phone])).await.unwrap(),
        Written::Yes
    );
    assert_eq!(
        repo.member_by_index(&tid(&other), phone.0, &phone.1)
            .await
            .unwrap(),
        Some(b)
    );
}

pub async fn released_index_reusable(stores: Stores) {
    let repo = stores.repo;
    let (t, a, b) = (unique("t"), unique("a"), unique("b"));
    let (old, new) = (phone(1), phone(2));
    assert_eq!(
        repo.write(created(&t, &a, vec![old])).await.unwrap(),
        Written::Yes
    );
    // A changes its phone: the new one claimed, the old one released.
    let changed = MemberWrite {
        tenant: t.clone(),
        member: a.clone(),
        profile: Some(profile(&t, &a, 2, vec![new])),
        released: vec![old],
        ..MemberWrite::default()
    };
    assert_eq!(repo.write(changed).await.unwrap(), Written::Yes);
    assert_eq!(
        repo.member_by_index(&tid(&t), old.0, &old.1).await.unwrap(),
        None
    );
    assert_eq!(
        repo.member_by_index(&tid(&t), new.0, &new.1).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        repo.write(created(&t, &b, vec![old])).await.unwrap(),
        Written::Yes
    );
    assert_eq!(
        repo.member_by_index(&tid(&t), old.0, &old.1).await.unwrap(),
        Some(b)
    );
}

pub async fn facts_versioning(stores: Stores) {
    let repo = stores.repo;
    let (t, m) = (unique("t"), unique("m"));
    assert_eq!(repo.facts(&tid(&t), &mid(&m)).await.unwrap(), None);
    assert_eq!(
        repo.write(created(&t, &m, vec![])).await.unwrap(),
        Written::Yes
    );
    assert_eq!(
        repo.write(facts_write(&t, &m, 2)).await.unwrap(),
        Written::Yes
    );
    assert_eq!(
        repo.write(facts_write(&t, &m, 2)).await.unwrap(),
        Written::Stale
    );
    assert_eq!(
        repo.write(facts_write(&t, &m, 4)).await.unwrap(),
        Written::Stale
    );
    assert_eq!(
        repo.facts(&tid(&t), &mid(&m)).await.unwrap(),
        Some(facts(&m, 2))
    );
    // A facts write does not touch the profile.
    assert_eq!(
        repo.profile(&tid(&t), &mid(&m))
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    // Facts of a member without a profile (a write of facts alone, from nothing).
    let bare = unique("m");
    assert_eq!(
        repo.write(facts_write(&t, &bare, 1)).await.unwrap(),
        Written::Yes
    );
    assert_eq!(
        repo.facts(&tid(&t), &mid(&bare)).await.unwrap(),
        Some(facts(&bare, 1))
    );
    assert_eq!(repo.profile(&tid(&t), &mid(&bare)).await.unwrap(), None);
}

pub async fn order_exists(stores: Stores) {
    let repo = stores.repo;
    let (t, m, id) = (unique("t"), unique("m"), unique("o"));
    assert_eq!(
        repo.write(created(&t, &m, vec![])).await.unwrap(),
        Written::Yes
    );
    let first = order(&m, &id, 1_800_000_000_000);
    let recorded = MemberWrite {
        order: Some(first.clone()),
        ..facts_write(&t, &m, 2)
    };
    assert_eq!(repo.write(recorded).await.unwrap(), Written::Yes);
    assert_eq!(
        repo.order(&tid(&t), &id).await.unwrap(),
        Some(first.clone())
    );
    let mut repeat = first.clone();
    repeat.total = 5;
    let again = MemberWrite {
        order: Some(repeat),
        ..facts_write(&t, &m, 3)
    };
    assert_eq!(
        repo.write(again).await.unwrap(),
        Written::OrderExists(Box::new(first))
    );
    // Nothing of the refused write shows.
    assert_eq!(
        repo.facts(&tid(&t), &mid(&m))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(repo.order(&tid(&t), &unique("o")).await.unwrap(), None);
}

pub async fn orders_newest_first_with_cursor(stores: Stores) {
    let repo = stores.repo;
    let (t, m) = (unique("t"), unique("m"));
    assert_eq!(
        repo.write(created(&t, &m, vec![])).await.unwrap(),
        Written::Yes
    );
    let orders: Vec<Order> = (0..3)
        .map(|i| order(&m, &unique("o"), 1_800_000_000_000 + i * 1_000))
        .collect();
    for (i, o) in orders.iter().enumerate() {
        let w = MemberWrite {
            order: Some(o.clone()),
            ..facts_write(&t, &m, i as u64 + 2)
        };
        assert_eq!(repo.write(w).await.unwrap(), Written::Yes);
    }
    let newest = repo.orders(&tid(&t), &mid(&m), None, 2).await.unwrap();
    assert_eq!(newest, vec![orders[2].clone(), orders[1].clone()]);
    let cursor = history_cursor(&newest[1]);
    let rest = repo
        .orders(&tid(&t), &mid(&m), Some(&cursor), 10)
        .await
        .unwrap();
    assert_eq!(rest, vec![orders[0].clone()]);
    assert!(
        repo.orders(&tid(&t), &mid(&unique("m")), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn orders_from_moving_orders(stores: Stores) {
    let repo = stores.repo;
    let (t, a, b) = (unique("t"), unique("a"), unique("b"));
    for m in [&a, &b] {
        assert_eq!(
            repo.write(created(&t, m, vec![])).await.unwrap(),
            Written::Yes
        );
    }
    let (o1, o2) = (
        order(&a, &unique("o"), 1_800_000_000_000),
        order(&a, &unique("o"), 1_800_000_001_000),
    );
    for (i, o) in [&o1, &o2].into_iter().enumerate() {
        let w = MemberWrite {
            order: Some(o.clone()),
            ..facts_write(&t, &a, i as u64 + 2)
        };
        assert_eq!(repo.write(w).await.unwrap(), Written::Yes);
    }
    // B takes o1, and names o2's id under another member too: only A's orders move.
    let moved = MemberWrite {
        orders_from: Some((a.clone(), vec![o1.order_id.clone(), unique("missing")])),
        ..facts_write(&t, &b, 2)
    };
    assert_eq!(repo.write(moved).await.unwrap(), Written::Yes);
    let mut o1_at_b = o1.clone();
    o1_at_b.member = b.clone();
    assert_eq!(
        repo.orders(&tid(&t), &mid(&b), None, 10).await.unwrap(),
        vec![o1_at_b.clone()]
    );
    assert_eq!(
        repo.orders(&tid(&t), &mid(&a), None, 10).await.unwrap(),
        vec![o2.clone()]
    );
    assert_eq!(
        repo.order(&tid(&t), &o1.order_id).await.unwrap(),
        Some(o1_at_b)
    );
    // Moving back (a reversal).
    let back = MemberWrite {
        orders_from: Some((b.clone(), vec![o1.order_id.clone()])),
        ..facts_write(&t, &a, 4)
    };
    assert_eq!(repo.write(back).await.unwrap(), Written::Yes);
    assert_eq!(
        repo.orders(&tid(&t), &mid(&a), None, 10).await.unwrap(),
        vec![o2, o1]
    );
    assert!(
        repo.orders(&tid(&t), &mid(&b), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn write_many_per_write_outcomes(stores: Stores) {
    let repo = stores.repo;
    let (t, x, y) = (unique("t"), unique("x"), unique("y"));
    let phone = phone(3);
    let id = unique("o");
    let checkpoint = SettingWrite {
        tenant: t.clone(),
        kind: "import".into(),
        name: "checkpoint".into(),
        value: b"42".to_vec(),
    };
    let v2 = MemberWrite {
        tenant: t.clone(),
        member: x.clone(),
        profile: Some(profile(&t, &x, 2, vec![phone])),
        ..MemberWrite::default()
    };
    let with_order = |version: u64, total: i64| {
        let mut o = order(&x, &id, 1_800_000_000_000);
        o.total = total;
        MemberWrite {
            order: Some(o),
            ..facts_write(&t, &x, version)
        }
    };
    let outcomes = repo
        .write_many(
            vec![
                created(&t, &x, vec![phone]),
                // The same creation again: stale against the one before it in the batch.
                created(&t, &x, vec![]),
                v2,
                // X's phone, claimed earlier in the batch.
                created(&t, &y, vec![phone]),
                with_order(2, 1),
                // The same order id again, later in the batch.
                with_order(3, 2),
            ],
            Some(checkpoint),
        )
        .await
        .unwrap();
    let mut repeat = order(&x, &id, 1_800_000_000_000);
    repeat.total = 2;
    assert_eq!(
        outcomes,
        vec![
            Written::Yes,
            Written::Stale,
            Written::Yes,
            Written::Taken(IndexKind::Phone, x.clone()),
            Written::Yes,
            Written::OrderExists(Box::new(repeat)),
        ]
    );
    assert_eq!(
        repo.profile(&tid(&t), &mid(&x))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        repo.facts(&tid(&t), &mid(&x))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(repo.profile(&tid(&t), &mid(&y)).await.unwrap(), None);
    assert_eq!(repo.order(&tid(&t), &id).await.unwrap().unwrap().total, 1);
    assert_eq!(
        repo.setting(&tid(&t), "import", "checkpoint")
            .await
            .unwrap(),
        Some(b"42".to_vec())
    );
    // An empty batch writes its setting alone.
    let empty = SettingWrite {
        tenant: t.clone(),
        kind: "import".into(),
        name: "checkpoint".into(),
        value: b"43".to_vec(),
    };
    assert!(
        repo.write_many(vec![], Some(empty))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        repo.setting(&tid(&t), "import", "checkpoint")
            .await
            .unwrap(),
        Some(b"43".to_vec())
    );
}

pub async fn write_all_or_nothing(stores: Stores) {
    let repo = stores.repo;
    let (t, a, b, c) = (unique("t"), unique("a"), unique("b"), unique("c"));
    let (pa, pb) = (phone(4), phone(5));
    for (m, p) in [(&a, pa), (&b, pb)] {
        assert_eq!(
            repo.write(created(&t, m, vec![p])).await.unwrap(),
            Written::Yes
        );
    }
    let record = |value: &[u8]| SettingWrite {
        tenant: t.clone(),
        kind: "merges".into(),
        name: "merge-1".into(),
        value: value.to_vec(),
    };
    let next = |m: &str, version: u64, indexes: Vec<(IndexKind, [u8; 32])>| MemberWrite {
        tenant: t.clone(),
        member: m.to_string(),
        profile: Some(profile(&t, m, version, indexes)),
        facts: Some(facts(m, version)),
        events: vec![event(&t, m, "merged")],
        ..MemberWrite::default()
    };

    // The second write is stale: nothing of the first is written, nor the record.
    let refused = repo
        .write_all(
            vec![next(&a, 2, vec![pa]), next(&b, 5, vec![pb])],
            Some(record(b"x")),
        )
        .await
        .unwrap();
    assert_eq!(refused, Written::Stale);
    assert_eq!(
        repo.profile(&tid(&t), &mid(&a))
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    assert_eq!(
        repo.setting(&tid(&t), "merges", "merge-1").await.unwrap(),
        None
    );

    // The second claims A's phone: Taken, and the first write's new phone stays free.
    let fresh = phone(6);
    let refused = repo
        .write_all(
            vec![next(&b, 2, vec![pb, fresh]), created(&t, &c, vec![pa])],
            Some(record(b"x")),
        )
        .await
        .unwrap();
    assert_eq!(refused, Written::Taken(IndexKind::Phone, a.clone()));
    assert_eq!(
        repo.member_by_index(&tid(&t), fresh.0, &fresh.1)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        repo.profile(&tid(&t), &mid(&b))
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    assert_eq!(repo.profile(&tid(&t), &mid(&c)).await.unwrap(), None);

    // A merge: A gives up its phone, B takes it; both written with the record.
    let mut gone = next(&a, 2, vec![]);
    gone.released = vec![pa];
    let done = repo
        .write_all(vec![gone, next(&b, 2, vec![pb, pa])], Some(record(b"done")))
        .await
        .unwrap();
    assert_eq!(done, Written::Yes);
    assert_eq!(
        repo.profile(&tid(&t), &mid(&a))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        repo.profile(&tid(&t), &mid(&b))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        repo.member_by_index(&tid(&t), pa.0, &pa.1).await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(
        repo.setting(&tid(&t), "merges", "merge-1").await.unwrap(),
        Some(b"done".to_vec())
    );
}

/// Members whose stored rows have every shape: a profile and no facts, facts and no
/// profile, neither, both; each written on its own (guarded on what it has) and then all in
/// one merge, one of them twice.
pub async fn write_all_over_members_of_every_shape(stores: Stores) {
    let repo = stores.repo;
    let t = unique("t");
    let (p_only, f_only, fresh, both) = (unique("p"), unique("f"), unique("n"), unique("b"));
    let mut profile_only = created(&t, &p_only, vec![phone(7)]);
    profile_only.facts = None;
    assert_eq!(repo.write(profile_only).await.unwrap(), Written::Yes);
    assert_eq!(
        repo.write(facts_write(&t, &f_only, 1)).await.unwrap(),
        Written::Yes
    );
    assert_eq!(
        repo.write(created(&t, &both, vec![phone(8)]))
            .await
            .unwrap(),
        Written::Yes
    );

    // Written on their own, each on the one version it has.
    let profile_at = |m: &str, version: u64, indexes| MemberWrite {
        tenant: t.clone(),
        member: m.to_string(),
        profile: Some(profile(&t, m, version, indexes)),
        ..MemberWrite::default()
    };
    let p_phone = repo
        .profile(&tid(&t), &mid(&p_only))
        .await
        .unwrap()
        .unwrap()
        .indexes;
    assert_eq!(
        repo.write(profile_at(&p_only, 2, p_phone.clone()))
            .await
            .unwrap(),
        Written::Yes
    );
    assert_eq!(
        repo.write(facts_write(&t, &f_only, 2)).await.unwrap(),
        Written::Yes
    );
    assert_eq!(repo.facts(&tid(&t), &mid(&p_only)).await.unwrap(), None);
    assert_eq!(repo.profile(&tid(&t), &mid(&f_only)).await.unwrap(), None);

    // One merge over all four shapes; `both` written twice (facts, then its profile).
    let both_phone = repo
        .profile(&tid(&t), &mid(&both))
        .await
        .unwrap()
        .unwrap()
        .indexes;
    let merge = vec![
        profile_at(&p_only, 3, p_phone),
        facts_write(&t, &f_only, 3),
        created(&t, &fresh, vec![phone(9)]),
        facts_write(&t, &both, 2),
        profile_at(&both, 2, both_phone),
    ];
    assert_eq!(repo.write_all(merge, None).await.unwrap(), Written::Yes);
    assert_eq!(
        repo.profile(&tid(&t), &mid(&p_only))
            .await
            .unwrap()
            .unwrap()
            .version,
        3
    );
    assert_eq!(
        repo.facts(&tid(&t), &mid(&f_only))
            .await
            .unwrap()
            .unwrap()
            .version,
        3
    );
    assert_eq!(
        repo.profile(&tid(&t), &mid(&fresh))
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    assert_eq!(
        repo.facts(&tid(&t), &mid(&both))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        repo.profile(&tid(&t), &mid(&both))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );

    // And afterwards every member takes an ordinary write again: the merge let go of them.
    assert_eq!(
        repo.write(facts_write(&t, &fresh, 2)).await.unwrap(),
        Written::Yes
    );
    assert_eq!(
        repo.write(facts_write(&t, &both, 3)).await.unwrap(),
        Written::Yes
    );
}

/// Writes of one member at once, each recording an order of its own on the same version:
/// one applies, the others are stale, and their orders are free again for a later write.
pub async fn racing_writes_leave_the_losers_orders_free(stores: Stores) {
    let repo = stores.repo;
    let (t, m) = (unique("t"), unique("m"));
    assert_eq!(
        repo.write(created(&t, &m, vec![])).await.unwrap(),
        Written::Yes
    );
    let ids: Vec<String> = (0..16).map(|_| unique("o")).collect();
    let racers: Vec<_> = ids
        .iter()
        .map(|id| {
            let repo = Arc::clone(&repo);
            let write = MemberWrite {
                order: Some(order(&m, id, 1_800_000_000_000)),
                ..facts_write(&t, &m, 2)
            };
            tokio::spawn(async move { repo.write(write).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.unwrap());
    }
    let winners = outcomes.iter().filter(|w| **w == Written::Yes).count();
    assert_eq!(winners, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|w| matches!(w, Written::Yes | Written::Stale)),
        "{outcomes:?}"
    );
    // Every loser's order can be recorded now, by the member's next writes.
    let mut version = 3;
    for (id, outcome) in ids.iter().zip(&outcomes) {
        if *outcome == Written::Yes {
            continue;
        }
        assert_eq!(repo.order(&tid(&t), id).await.unwrap(), None);
        let again = MemberWrite {
            order: Some(order(&m, id, 1_800_000_000_000)),
            ..facts_write(&t, &m, version)
        };
        assert_eq!(repo.write(again).await.unwrap(), Written::Yes, "{id}");
        version += 1;
    }
}

/// Two merges over the same two members at once, taking them in opposite orders: at most one
/// applies, and neither leaves the members held (each takes an ordinary write after).
pub async fn racing_merges_let_go_of_what_they_held(stores: Stores) {
    let repo = stores.repo;
    let t = unique("t");
    let (a, b) = (unique("a"), unique("b"));
    for m in [&a, &b] {
        assert_eq!(
            repo.write(created(&t, m, vec![])).await.unwrap(),
            Written::Yes
        );
    }
    let mut applied = 0;
    for round in 0..8u64 {
        let merge = |first: &str, second: &str| {
            vec![
                facts_write(&t, first, 2 + round),
                facts_write(&t, second, 2 + round),
            ]
        };
        let (one, other) = (Arc::clone(&repo), Arc::clone(&repo));
        let (x, y) = (merge(&a, &b), merge(&b, &a));
        let x = tokio::spawn(async move { one.write_all(x, None).await.unwrap() });
        let y = tokio::spawn(async move { other.write_all(y, None).await.unwrap() });
        let (x, y) = (x.await.unwrap(), y.await.unwrap());
        let yes = [&x, &y].iter().filter(|w| ***w == Written::Yes).count();
        assert!(yes <= 1, "round {round}: {x:?} {y:?}");
        assert!(
            [&x, &y]
                .iter()
                .all(|w| matches!(w, Written::Yes | Written::Stale)),
            "round {round}: {x:?} {y:?}"
        );
        if yes == 0 {
            // Both refused: the round is written plainly, which no hold may stop.
            for m in [&a, &b] {
                assert_eq!(
                    repo.write(facts_write(&t, m, 2 + round)).await.unwrap(),
                    Written::Yes,
                    "round {round}: {m} is not held"
                );
            }
        } else {
            applied += 1;
        }
    }
    eprintln!("racing merges: {applied} of 8 rounds had a merge apply");
    for m in [&a, &b] {
        assert_eq!(
            repo.facts(&tid(&t), &mid(m))
                .await
                .unwrap()
                .unwrap()
                .version,
            9
        );
    }
}
