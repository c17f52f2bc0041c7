//! Reads and listings: pages, settings, tenant keys, segments, the outbox, tenants, purge.

use super::*;

pub async fn pages_in_member_order(stores: Stores) {
    let repo = stores.repo;
    let t = unique("t");
    let members: Vec<String> = (0..7).map(|i| format!("m{i:02}")).collect();
    // Written out of order; m03 has facts only (in facts pages, not in profile pages).
    for i in [4, 1, 6, 0, 5, 2] {
        let m = &members[i];
        assert_eq!(
            repo.write(created(&t, m, vec![])).await.unwrap(),
            Written::Yes
        );
    }
    assert_eq!(
        repo.write(facts_write(&t, &members[3], 1)).await.unwrap(),
        Written::Yes
    );
    let ids = |p: Vec<StoredProfile>| p.into_iter().map(|p| p.member_id).collect::<Vec<_>>();
    let first = repo.profiles_page(&tid(&t), None, 3).await.unwrap();
    assert_eq!(ids(first), ["m00", "m01", "m02"]);
    let rest = repo.profiles_page(&tid(&t), Some("m02"), 10).await.unwrap();
    assert_eq!(ids(rest), ["m04", "m05", "m06"]);
    let facts: Vec<String> = repo
        .facts_page(&tid(&t), Some("m01"), 4)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.value.member_id)
        .collect();
    assert_eq!(facts, ["m02", "m03", "m04", "m05"]);
    assert!(
        repo.profiles_page(&tid(&t), Some("m06"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        repo.profiles_page(&tid(&unique("t")), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn settings_put_get_list_delete(stores: Stores) {
    let repo = stores.repo;
    let t = unique("t");
    assert_eq!(repo.setting(&tid(&t), "segment", "a").await.unwrap(), None);
    repo.put_setting(&tid(&t), "segment", "b", Some(b"2".to_vec()))
        .await
        .unwrap();
    repo.put_setting(&tid(&t), "segment", "a", Some(b"1".to_vec()))
        .await
        .unwrap();
    repo.put_setting(&tid(&t), "tier_policy", "current", Some(b"p".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        repo.setting(&tid(&t), "segment", "a").await.unwrap(),
        Some(b"1".to_vec())
    );
    assert_eq!(
        repo.settings(&tid(&t), "segment").await.unwrap(),
        vec![
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"2".to_vec())
        ]
    );
    repo.put_setting(&tid(&t), "segment", "a", Some(b"one".to_vec()))
        .await
        .unwrap();
    repo.put_setting(&tid(&t), "segment", "b", None)
        .await
        .unwrap();
    assert_eq!(
        repo.settings(&tid(&t), "segment").await.unwrap(),
        vec![("a".to_string(), b"one".to_vec())]
    );
    assert_eq!(repo.setting(&tid(&t), "segment", "b").await.unwrap(), None);
    assert!(
        repo.settings(&tid(&unique("t")), "segment")
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn tenant_keys_add_twice(stores: Stores) {
    let repo = stores.repo;
    let t = unique("t");
    let v1 = StoredTenantKey {
        version: 1,
        sealed: vec![1, 1],
    };
    let v2 = StoredTenantKey {
        version: 2,
        sealed: vec![2, 2],
    };
    assert!(repo.tenant_keys(&tid(&t)).await.unwrap().is_empty());
    assert!(repo.add_tenant_key(&tid(&t), &v2).await.unwrap());
    assert!(repo.add_tenant_key(&tid(&t), &v1).await.unwrap());
    let other = StoredTenantKey {
        version: 1,
        sealed: vec![9],
    };
    assert!(!repo.add_tenant_key(&tid(&t), &other).await.unwrap());
    assert_eq!(repo.tenant_keys(&tid(&t)).await.unwrap(), vec![v1, v2]);
}

pub async fn segments_add_page_drop(stores: Stores) {
    let repo = stores.repo;
    let (t, s) = (unique("t"), unique("s"));
    let members: Vec<String> = (0..40).map(|i| format!("m{i:03}")).collect();
    let mut shuffled = members.clone();
    shuffled.reverse();
    repo.add_segment_members(&tid(&t), &s, 1, shuffled[..20].to_vec())
        .await
        .unwrap();
    repo.add_segment_members(&tid(&t), &s, 1, shuffled[20..].to_vec())
        .await
        .unwrap();
    repo.add_segment_members(&tid(&t), &s, 2, vec!["m900".into()])
        .await
        .unwrap();
    let mut read = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = repo
            .segment_members(&tid(&t), &s, 1, after.as_deref(), 7)
            .await
            .unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last().cloned() else {
            break;
        };
        read.extend(page);
        after = Some(last);
    }
    assert_eq!(read, members);
    repo.drop_segment_members(&tid(&t), &s, 1).await.unwrap();
    assert!(
        repo.segment_members(&tid(&t), &s, 1, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        repo.segment_members(&tid(&t), &s, 2, None, 10)
            .await
            .unwrap(),
        ["m900"]
    );
}

pub async fn events_in_order_once_each(stores: Stores) {
    let (t, a, b) = (unique("t"), unique("a"), unique("b"));
    let repo = Arc::clone(&stores.repo);
    let mut ea = created(&t, &a, vec![]);
    ea.events.push(event(&t, &a, "tagged"));
    let mut eb = created(&t, &b, vec![]);
    let mut later = facts_write(&t, &a, 2);
    later.events = vec![event(&t, &a, "tiered")];
    // This write is made in a request's trace: its event's record carries it.
    let traced = TraceContext {
        traceparent: format!("00-{:032x}-00f067aa0ba902b7-01", ulid::Ulid::new().0),
        tracestate: None,
    };
    let traced_id = later.events[0].id.clone();
    loyalty_events::trace::keep([traced_id.clone()], &traced);
    let expected_a: Vec<String> = ea
        .events
        .iter()
        .chain(&later.events)
        .map(|e| e.id.clone())
        .collect();
    let expected_b: Vec<String> = eb.events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(repo.write(ea).await.unwrap(), Written::Yes);
    assert_eq!(
        repo.write(std::mem::take(&mut eb)).await.unwrap(),
        Written::Yes
    );
    assert_eq!(repo.write(later).await.unwrap(), Written::Yes);
    // A refused write's events never show.
    let mut refused = facts_write(&t, &a, 2);
    refused.events = vec![event(&t, &a, "never")];
    let never = refused.events[0].id.clone();
    assert_eq!(repo.write(refused).await.unwrap(), Written::Stale);

    // Read the whole log until this test's events show (on ScyllaDB a relay pass may wait
    // for another process's lease); the log is shared, so keep this tenant's events.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (mut seen, mut last_seq) = (Vec::new(), 0);
    loop {
        let page = repo.events_after(last_seq, 500).await.unwrap();
        for logged in &page {
            assert!(logged.seq > last_seq, "numbers grow");
            last_seq = logged.seq;
            if logged.event.tenant == t {
                seen.push(logged.clone());
            }
        }
        if seen.len() >= 4 || std::time::Instant::now() > deadline {
            break;
        }
        if page.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let ids = |m: &str| -> Vec<String> {
        seen.iter()
            .filter(|l| l.event.member == m)
            .map(|l| l.event.id.clone())
            .collect()
    };
    assert_eq!(ids(&a), expected_a);
    assert_eq!(ids(&b), expected_b);
    assert!(seen.iter().all(|l| l.event.id != never));
    let unique_seqs: HashSet<u64> = seen.iter().map(|l| l.seq).collect();
    assert_eq!(unique_seqs.len(), seen.len());
    // The log's end, for the publisher's backlog: at least what was read.
    assert!(repo.log_end(0).await.unwrap() >= last_seq);
    // Reading on from the newest number gives none of them again.
    let after = repo.events_after(last_seq, 500).await.unwrap();
    assert!(after.iter().all(|l| l.event.tenant != t));

    // A reader's position, kept across a reopening.
    let reader = unique("reader");
    assert_eq!(repo.position(&reader).await.unwrap(), 0);
    repo.save_position(&reader, last_seq).await.unwrap();
    drop(repo);
    let stores = stores.reopen().await;
    assert_eq!(stores.repo.position(&reader).await.unwrap(), last_seq);
    let again = stores.repo.events_after(0, usize::MAX).await.unwrap();
    let mine = again.iter().filter(|l| l.event.tenant == t).count();
    assert_eq!(mine, seen.len(), "the log keeps each event once");
    // Read back by another store than the one that wrote it: the trace is the record's.
    for logged in again.iter().filter(|l| l.event.tenant == t) {
        let expected = (logged.event.id == traced_id).then_some(&traced);
        assert_eq!(logged.trace.as_ref(), expected, "{}", logged.event.name);
    }
}

pub async fn tenants_list(stores: Stores) {
    let repo = stores.repo;
    let (t1, t2) = (unique("t"), unique("t"));
    let key = StoredTenantKey {
        version: 1,
        sealed: vec![1],
    };
    repo.add_tenant_key(&tid(&t2), &key).await.unwrap();
    repo.add_tenant_key(&tid(&t1), &key).await.unwrap();
    repo.add_tenant_key(
        &tid(&t1),
        &StoredTenantKey {
            version: 2,
            sealed: vec![2],
        },
    )
    .await
    .unwrap();
    let tenants = repo.tenants().await.unwrap();
    let mine: Vec<&String> = tenants.iter().filter(|t| **t == t1 || **t == t2).collect();
    let mut expected = vec![&t1, &t2];
    expected.sort();
    assert_eq!(mine, expected, "each once, in order");
    let mut sorted = tenants.clone();
    sorted.sort();
    assert_eq!(tenants, sorted);
}

pub async fn purge_keeps_what_is_current(stores: Stores) {
    let repo = stores.repo;
    let (t, m) = (unique("t"), unique("m"));
    assert_eq!(
        repo.write(created(&t, &m, vec![])).await.unwrap(),
        Written::Yes
    );
    repo.purge().await.unwrap();
    assert_eq!(
        repo.profile(&tid(&t), &mid(&m))
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
}
