//! Member profiles through the gateway: personal data masked unless read through the
//! unmasked route (which needs `member.pii` read and is audited), lookup and de-duplication
//! by phone, and erasure.

use loyalty_tests::{TestApp, spawn_app};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_are_masked_audited_when_unmasked_deduplicated_and_erasable() {
    let app = spawn_app().await;
    masked_audited_deduplicated_and_erasable(&app).await;
    app.stop().await;
}

/// A profile masked unless read through the audited unmasked route, a partner refused the
/// unmasked one, lookup and de-duplication by phone, and erasure.
pub(crate) async fn masked_audited_deduplicated_and_erasable(app: &TestApp) {
    let key = app.acme_partner_key().await;
    let body = json!({
        "personal": {"name": "王小明", "phone": "138 1234 5678", "email": "alice@example.cn",
                      "id_number": "11010119900307123X", "birthday": "1990-03-07"},
        "channel": "app", "consents": {"sms": true}
    });
    let created = app.post("/v1/tenants/acme/members/m1/profile", body).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert_eq!(created.body["personal"]["phone"], "138****5678");
    assert_eq!(created.body["personal"]["name"], "王**");

    let masked = app.get("/v1/tenants/acme/members/m1/profile").await;
    assert_eq!(masked.body["personal"]["email"], "a***@example.cn");
    let clear = app
        .get("/v1/tenants/acme/members/m1/profile/unmasked")
        .await;
    assert_eq!(clear.status, 200);
    assert_eq!(clear.body["personal"]["phone"], "138 1234 5678");
    assert_eq!(clear.body["personal"]["id_number"], "11010119900307123X");
    let audit = app.get("/v1/tenants/acme/audit?limit=100").await;
    let unmasked_reads = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event"]["action"] == "member.read_unmasked")
        .count();
    assert_eq!(unmasked_reads, 1, "every unmasked read is recorded");

    // A partner reads members masked, and may not unmask.
    let masked = app
        .get_with_key("/v1/tenants/acme/members/m1/profile", &key)
        .await;
    assert_eq!(masked.status(), 200);
    let refused = app
        .get_with_key("/v1/tenants/acme/members/m1/profile/unmasked", &key)
        .await;
    assert_eq!(refused.status(), 403);

    let found = app
        .get("/v1/tenants/acme/member-lookup?phone=%2B86%2013812345678")
        .await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    assert_eq!(found.body["member_id"], "m1");
    let twin = app
        .post(
            "/v1/tenants/acme/members/m2/profile",
            json!({"personal": {"phone": "13812345678"}}),
        )
        .await;
    assert_eq!(twin.status, 409);
    assert_eq!(twin.body["code"], "DUPLICATE_MEMBER");

    let erased = app
        .post("/v1/tenants/acme/members/m1/erasure", json!({}))
        .await;
    assert_eq!(erased.status, 200, "{:?}", erased.body);
    let gone = app.get("/v1/tenants/acme/members/m1/profile").await;
    assert_eq!(gone.status, 410);
    assert_eq!(gone.body["code"], "MEMBER_ERASED");
    let lookup = app
        .get("/v1/tenants/acme/member-lookup?phone=13812345678")
        .await;
    assert_eq!(lookup.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_list_pages_masked_members_narrowed_by_tag_and_segment() {
    let app = spawn_app().await;
    app.post("/v1/tenants", json!({"id": "acme", "name": "Acme"}))
        .await;
    for n in 0..7 {
        app.join(&format!("m{n}"), &format!("1390000000{n}")).await;
    }
    for member in ["m1", "m4", "m6"] {
        let path = format!("/v1/tenants/acme/members/{member}/tags");
        let tagged = app.post(&path, json!({"add": ["vip"]})).await;
        assert_eq!(tagged.status, 200, "{tagged:?}");
    }
    let mut seen = Vec::new();
    let mut path = "/v1/tenants/acme/members?limit=3".to_string();
    loop {
        let page = app.get(&path).await;
        assert_eq!(page.status, 200, "{page:?}");
        for member in page.body["members"].as_array().unwrap() {
            assert!(
                member["personal"]["phone"]
                    .as_str()
                    .unwrap()
                    .contains("****")
            );
            seen.push(member["member_id"].as_str().unwrap().to_string());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/tenants/acme/members?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
    let vip = app.get("/v1/tenants/acme/members?tag=vip").await;
    let ids: Vec<&str> = vip.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m1", "m4", "m6"]);
    let bad = app.get("/v1/tenants/acme/members?limit=500").await;
    assert_eq!(bad.status, 400, "{bad:?}");
    let segment = json!({"name": "VIP", "query": {"tag": "vip"}});
    let put = app
        .request("PUT", "/v1/tenants/acme/segments/vips", segment)
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    let refreshed = app
        .post("/v1/tenants/acme/segments/vips/refresh", json!({}))
        .await;
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    let in_segment = app
        .get("/v1/tenants/acme/members?segment=vips&limit=2")
        .await;
    assert_eq!(in_segment.body["members"].as_array().unwrap().len(), 2);
    assert!(in_segment.body["next_cursor"].is_string());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_is_counted_before_it_is_saved_and_nothing_is_stored() {
    let app = spawn_app().await;
    app.post("/v1/tenants", json!({"id": "acme", "name": "Acme"}))
        .await;
    for n in 0..4 {
        app.join(&format!("m{n}"), &format!("1390000001{n}")).await;
    }
    let tagged = app
        .post("/v1/tenants/acme/members/m2/tags", json!({"add": ["vip"]}))
        .await;
    assert_eq!(tagged.status, 200, "{tagged:?}");
    let preview = app
        .get("/v1/tenants/acme/segment-preview?query=%7B%22tag%22%3A%22vip%22%7D")
        .await;
    assert_eq!(preview.status, 200, "{preview:?}");
    assert_eq!(
        preview.body,
        json!({"count": 1, "scanned": 4, "complete": true})
    );
    let bad = app
        .get("/v1/tenants/acme/segment-preview?query=%7B%22colour%22%3A1%7D")
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (400, "INVALID_ARGUMENT"),
        "{bad:?}"
    );
    let segments = app.get("/v1/tenants/acme/segments").await;
    assert_eq!(segments.body, json!([]), "nothing stored");
    app.stop().await;
}
