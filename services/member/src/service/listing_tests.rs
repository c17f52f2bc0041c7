//! The member list: pages in member id order that together hold every live member once,
//! filters that narrow them, masked personal data.

use super::tests::harness_parts;
use super::*;
use loyalty_common::personal::Exposed;

async fn seed(members: &Members, tenant: &TenantId) {
    for n in 0..25 {
        let input = ProfileInput {
            personal: Personal {
                phone: Some(format!("1381234{n:04}").into()),
                ..Personal::default()
            },
            store: Some(if n % 2 == 0 { "s1" } else { "s2" }.into()),
            tags: if n % 3 == 0 {
                ["vip".to_string()].into()
            } else {
                BTreeSet::new()
            },
            ..ProfileInput::default()
        };
        let member = MemberId::parse(format!("m{n:02}")).unwrap();
        members.register(tenant, &member, input).await.unwrap();
    }
    let erased = MemberId::parse("m03").unwrap();
    members.erase(tenant, &erased).await.unwrap();
}

fn ids(page: &MemberPage) -> Vec<&str> {
    page.members.iter().map(|m| m.member_id.as_str()).collect()
}

#[tokio::test]
async fn pages_hold_every_live_member_once_in_order_and_masked() {
    let (members, _dir) = harness_parts();
    let acme = TenantId::parse("acme").unwrap();
    seed(&members, &acme).await;
    let everyone = MemberFilter::default();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let page = members
            .list_members(&acme, &everyone, cursor.as_deref(), 10)
            .await
            .unwrap();
        assert!(page.members.len() <= 10);
        for member in &page.members {
            let phone = member.personal.phone.exposed().unwrap();
            assert!(phone.contains("****"), "masked: {phone}");
        }
        seen.extend(ids(&page).into_iter().map(String::from));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let expected: Vec<String> = (0..25)
        .filter(|n| *n != 3)
        .map(|n| format!("m{n:02}"))
        .collect();
    assert_eq!(
        seen, expected,
        "every live member once, erased m03 left out"
    );
}

#[tokio::test]
async fn filters_narrow_the_list_and_all_must_match() {
    let (members, _dir) = harness_parts();
    let acme = TenantId::parse("acme").unwrap();
    seed(&members, &acme).await;
    let vip_at_s1 = MemberFilter {
        tag: Some("vip".into()),
        store: Some("s1".into()),
        ..MemberFilter::default()
    };
    let page = members
        .list_members(&acme, &vip_at_s1, None, 50)
        .await
        .unwrap();
    assert_eq!(ids(&page), ["m00", "m06", "m12", "m18", "m24"]);
    assert_eq!(page.next_cursor, None);
    assert_eq!(page.scanned, 25);
    let gold = MemberFilter {
        tier: Some("gold".into()),
        ..MemberFilter::default()
    };
    let none = members.list_members(&acme, &gold, None, 50).await.unwrap();
    assert!(none.members.is_empty() && none.next_cursor.is_none());
    // Another tenant's members are not in it.
    let globex = TenantId::parse("globex").unwrap();
    let empty = MemberFilter::default();
    let other = members
        .list_members(&globex, &empty, None, 50)
        .await
        .unwrap();
    assert!(other.members.is_empty());
}
