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
