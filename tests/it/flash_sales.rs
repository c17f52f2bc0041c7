//! Flash sales end to end through memberd: head office creates a sale over REST, a till (a
//! partner key) claims, confirms and releases for members, the stock is never passed, bad
//! input gets a stable 4xx, and the same over `campaign.v1`.

use loyalty_proto::campaign::v1 as pb;
use loyalty_proto::campaign::v1::campaign_service_client::CampaignServiceClient;
use loyalty_tests::spawn_app;
use serde_json::{Value, json};

fn sale_json(id: &str, units: u64) -> Value {
    json!({"id": id, "name": "Singles' day tea", "item": {"kind": "item", "sku": "TEA-1"},
        "quotas": {"*": units}, "per_member_limit": 1, "starts_ms": 0, "hold_secs": 600})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_office_creates_a_sale_and_tills_claim_confirm_and_release() {
    let app = spawn_app().await;
    let till = app.acme_partner_key().await;
    for (m, phone) in [
        ("m1", "13812340001"),
        ("m2", "13812340002"),
        ("m3", "13812340003"),
    ] {
        app.join(m, phone).await;
    }
    let mut bad = sale_json("TEA", 2);
    bad["quotas"] = json!({});
    let refused = app
        .post_with_key("/v1/tenants/acme/flash-sales", "s0", bad)
        .await;
    assert_eq!((refused.status, refused.code()), (400, "INVALID_ARGUMENT"));
    assert!(
        refused.body["detail"].as_str().unwrap().contains("quotas"),
        "{:?}",
        refused.body
    );
    let shapeless = app
        .post_with_key("/v1/tenants/acme/flash-sales", "s0", json!({"id": 7}))
        .await;
    assert_eq!(
        (shapeless.status, shapeless.code()),
        (400, "INVALID_ARGUMENT")
    );
    let by_till = app
        .post_as(
            &till,
            "/v1/tenants/acme/flash-sales",
            "s1",
            sale_json("TEA", 2),
        )
        .await;
    assert_eq!(by_till.status, 403, "a till does not create sales");
    let created = app
        .post_with_key("/v1/tenants/acme/flash-sales", "s1", sale_json("TEA", 2))
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert_eq!(created.body["remaining"]["*"], 2);
    let again = app
        .post_with_key("/v1/tenants/acme/flash-sales", "s2", sale_json("TEA", 2))
        .await;
    assert_eq!(again.status, 200, "creating it again answers with it");
    let other = app
        .post_with_key("/v1/tenants/acme/flash-sales", "s3", sale_json("TEA", 5))
        .await;
    assert_eq!((other.status, other.code()), (409, "ALREADY_EXISTS"));

    let claims = "/v1/tenants/acme/flash-sales/TEA/claims";
    let unknown = app
        .post_as(&till, claims, "c0", json!({"member_id": "nobody"}))
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, "MEMBER_NOT_FOUND"));
    let first = app
        .post_as(&till, claims, "c1", json!({"member_id": "m1"}))
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(
        (first.body["state"].as_str(), first.body["quota"].as_str()),
        (Some("held"), Some("*"))
    );
    let retry = app
        .post_as(&till, claims, "c1", json!({"member_id": "m1"}))
        .await;
    assert_eq!(retry.body, first.body, "the same claim id, the same claim");
    let stolen = app
        .post_as(&till, claims, "c1", json!({"member_id": "m2"}))
        .await;
    assert_eq!(
        (stolen.status, stolen.code()),
        (409, "IDEMPOTENCY_CONFLICT")
    );
    let twice = app
        .post_as(&till, claims, "c2", json!({"member_id": "m1"}))
        .await;
    assert_eq!((twice.status, twice.code()), (409, "CLAIM_LIMIT_REACHED"));
    let second = app
        .post_as(&till, claims, "c3", json!({"member_id": "m2"}))
        .await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    let sold_out = app
        .post_as(&till, claims, "c4", json!({"member_id": "m3"}))
        .await;
    assert_eq!((sold_out.status, sold_out.code()), (409, "SOLD_OUT"));
    let no_body = app.post_as(&till, claims, "c5", json!({"member": 1})).await;
    assert_eq!(
        (no_body.status, no_body.code()),
        (400, "MALFORMED_BODY"),
        "{:?}",
        no_body.body
    );

    let released = app
        .post_as(&till, &format!("{claims}/c3/release"), "r1", json!({}))
        .await;
    assert_eq!(released.body["state"], "released", "{:?}", released.body);
    let third = app
        .post_as(&till, claims, "c4", json!({"member_id": "m3"}))
        .await;
    assert_eq!(
        third.status, 200,
        "the released unit is claimed again: {:?}",
        third.body
    );
    let confirmed = app
        .post_as(&till, &format!("{claims}/c1/confirm"), "f1", json!({}))
        .await;
    assert_eq!(
        (confirmed.status, confirmed.body["state"].as_str()),
        (200, Some("confirmed")),
        "{:?}",
        confirmed.body
    );
    let reconfirmed = app
        .post_as(&till, &format!("{claims}/c1/confirm"), "f2", json!({}))
        .await;
    assert_eq!(
        (reconfirmed.status, &reconfirmed.body),
        (200, &confirmed.body)
    );
    let late = app
        .post_as(&till, &format!("{claims}/c1/release"), "r2", json!({}))
        .await;
    assert_eq!((late.status, late.code()), (409, "CLAIM_NOT_ACTIVE"));
    let missing = app
        .post_as(&till, &format!("{claims}/nope/confirm"), "f3", json!({}))
        .await;
    assert_eq!((missing.status, missing.code()), (404, "CLAIM_NOT_FOUND"));
    let no_sale = app
        .post_as(
            &till,
            "/v1/tenants/acme/flash-sales/NOPE/claims",
            "c9",
            json!({"member_id": "m1"}),
        )
        .await;
    assert_eq!((no_sale.status, no_sale.code()), (404, "SALE_NOT_FOUND"));

    let state = app.get("/v1/tenants/acme/flash-sales/TEA").await;
    assert_eq!(
        (
            state.body["taken"]["*"].as_u64(),
            state.body["remaining"]["*"].as_u64()
        ),
        (Some(2), Some(0))
    );
    let claim = app.get(&format!("{claims}/c4")).await;
    assert_eq!(claim.body["member_id"], "m3");
    let spec = app.get("/v1/openapi.json").await;
    for path in [
        "/v1/tenants/{tenant}/flash-sales",
        "/v1/tenants/{tenant}/flash-sales/{sale}/claims/{claim}/confirm",
    ] {
        assert!(spec.body["paths"][path].is_object(), "{path} is documented");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_campaign_port_claims_as_rest_does() {
    let app = spawn_app().await;
    let till = app.acme_partner_key().await;
    app.join("m1", "13812340001").await;
    let created = app
        .post_with_key("/v1/tenants/acme/flash-sales", "s1", sale_json("ONE", 1))
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let channel = tonic::transport::Endpoint::from_shared(app.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = CampaignServiceClient::new(channel);
    let claim_request = || pb::ClaimRequest {
        tenant_id: "acme".into(),
        sale_id: "ONE".into(),
        claim_id: "g1".into(),
        member_id: "m1".into(),
    };
    let anonymous = client
        .claim_flash_sale(tonic::Request::new(claim_request()))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let claim = client
        .claim_flash_sale(as_till(claim_request(), &till))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((claim.state.as_str(), claim.quota.as_str()), ("held", "*"));
    let claim_ref = || pb::ClaimRef {
        tenant_id: "acme".into(),
        sale_id: "ONE".into(),
        claim_id: "g1".into(),
    };
    let confirmed = client
        .confirm_claim(as_till(claim_ref(), &till))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(confirmed.state, "confirmed");
    let again = client
        .confirm_claim(as_till(claim_ref(), &till))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, confirmed, "confirming again answers the same");
    let read = client
        .get_claim(as_till(claim_ref(), &till))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, confirmed);
    let sale = client
        .get_flash_sale(as_till(
            pb::FlashSaleRef {
                tenant_id: "acme".into(),
                sale_id: "ONE".into(),
            },
            &till,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((sale.taken["*"], sale.remaining["*"]), (1, 0));
    // A till reads sales but does not set them up.
    let create = |json: &str| pb::CreateFlashSaleRequest {
        tenant_id: "acme".into(),
        json: json.into(),
    };
    let refused = client
        .create_flash_sale(as_till(create(&sale_json("TWO", 1).to_string()), &till))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let mut bad = tonic::Request::new(create(r#"{"id": "TWO"}"#));
    bad.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", app.token).parse().unwrap(),
    );
    let bad = client.create_flash_sale(bad).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    assert!(bad.message().contains("name"), "names the field: {bad:?}");
    let rest = app.get("/v1/tenants/acme/flash-sales/ONE").await;
    assert_eq!(rest.body["remaining"]["*"], 0);
    app.stop().await;
}

/// `message`, sent with the till's API key.
fn as_till<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-api-key", key.parse().unwrap());
    request
}
