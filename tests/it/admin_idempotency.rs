//! Administrative writes are idempotent: a retry with the same Idempotency-Key gets the first
//! reply instead of acting twice; what was shown once is never replayed.

use loyalty_tests::spawn_app;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_creation_gets_the_first_reply_and_acts_once() {
    let app = spawn_app().await;
    let body = json!({"id": "acme", "name": "Acme"});
    let first = app
        .post_with_key("/v1/tenants", "create-acme", body.clone())
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let replay = app
        .client
        .post(format!("{}/v1/tenants", app.base))
        .bearer_auth(&app.token)
        .header("idempotency-key", "create-acme")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replayed: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(replayed, first.body, "the first reply, again");

    // Without the key, the same creation is a second act, and refused as such.
    let again = app.post("/v1/tenants", body).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["code"], "ALREADY_EXISTS");

    // The same key with another request is refused, and acts not at all.
    let other = app
        .post_with_key(
            "/v1/tenants",
            "create-acme",
            json!({"id": "globex", "name": "G"}),
        )
        .await;
    assert_eq!(other.status, 409);
    assert_eq!(other.body["code"], "IDEMPOTENCY_CONFLICT");
    assert_eq!(app.get("/v1/tenants/globex").await.status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_administrative_post_needs_a_key() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/v1/tenants", app.base))
        .bearer_auth(&app.token)
        .json(&json!({"id": "acme", "name": "Acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "IDEMPOTENCY_KEY_MISSING");
    assert_eq!(
        app.get("/v1/tenants/acme").await.status,
        404,
        "nothing done"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_shown_once_is_never_replayed() {
    let app = spawn_app().await;
    app.post("/v1/tenants", json!({"id": "acme", "name": "Acme"}))
        .await;
    let request = json!({"name": "crm", "roles": ["partner"]});
    let first = app
        .post_with_key("/v1/tenants/acme/api-keys", "crm-key", request.clone())
        .await;
    assert_eq!(first.status, 200);
    let secret = first.body["key"].as_str().unwrap().to_string();
    let id = first.body["id"].as_str().unwrap().to_string();
    let retry = app
        .post_with_key("/v1/tenants/acme/api-keys", "crm-key", request)
        .await;
    assert_eq!(retry.status, 409, "{:?}", retry.body);
    assert_eq!(retry.body["code"], "ALREADY_APPLIED");
    let detail = retry.body["detail"].as_str().unwrap();
    assert!(detail.contains(&id), "names what it created: {detail}");
    assert!(!detail.contains(&secret), "never the secret: {detail}");
    // Exactly one key was created, and it works.
    let balance = app
        .get_with_key("/v1/tenants/acme/members/m1/balance", &secret)
        .await;
    assert_eq!(balance.status(), 404);
    app.stop().await;
}
