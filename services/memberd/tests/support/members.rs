//! A member registered then tagged over REST against a running memberd, and the member events
//! that must show it.

#![allow(dead_code)] // Each test binary compiles this module; not every one uses every helper.

use super::{Addrs, http_post_with};
use loyalty_events::Envelope;

const PHONE: &str = "13812345678";
const NAME: &str = "王小明";

/// As the platform administrator: creates `tenant`, registers `member` in it with personal
/// data, then tags the member `vip`.
pub async fn register_then_tag(addrs: &Addrs, tenant: &str, member: &str) {
    let token = addrs.token().await;
    let tenant_body = format!(r#"{{"id":"{tenant}","name":"{tenant}"}}"#);
    post(addrs, &token, "/v1/tenants", "tenant", &tenant_body).await;
    let profile = format!(
        r#"{{"personal":{{"name":"{NAME}","phone":"{PHONE}"}},"channel":"app","consents":{{"sms":true}}}}"#
    );
    let path = format!("/v1/tenants/{tenant}/members/{member}");
    post(
        addrs,
        &token,
        &format!("{path}/profile"),
        "register",
        &profile,
    )
    .await;
    let tags = r#"{"add":["vip"]}"#;
    post(addrs, &token, &format!("{path}/tags"), "tag", tags).await;
}

/// POSTs `body` with the idempotency key `key`; the reply must be 200.
async fn post(addrs: &Addrs, token: &str, path: &str, key: &str, body: &str) {
    let headers = format!("Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n");
    let (status, reply) = http_post_with(&addrs.http, path, &headers, body).await;
    assert_eq!(status, 200, "POST {path}: {reply}");
}

/// The member events of [`register_then_tag`]: `created` then `tagged`, each once, in order,
/// about `member`, with no personal data.
pub fn assert_created_then_tagged(events: &[Envelope], tenant: &str, member: &str) {
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["loyalty.member.created.v1", "loyalty.member.tagged.v1"],
        "{events:?}"
    );
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [1, 2], "commit order");
    for e in events {
        assert_eq!((e.tenant.as_str(), e.subject.as_str()), (tenant, member));
        assert_eq!(e.source, format!("/member/{tenant}"));
        assert_eq!(
            e.nats_subject(),
            format!("member.{tenant}.member.{}", e.name())
        );
        let json = serde_json::to_string(e).unwrap();
        assert!(
            !json.contains(PHONE) && !json.contains(NAME),
            "personal data in {json}"
        );
    }
    let created = events[0].data_value();
    assert_eq!(
        (created["source"].as_str(), created["channel"].as_str()),
        (Some("api"), Some("app"))
    );
    assert_eq!(events[1].data_value()["added"], serde_json::json!(["vip"]));
}
