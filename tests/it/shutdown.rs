//! Graceful shutdown: requests already accepted finish and are durable; none fails half-way.

use loyalty_tests::{spawn_app, spawn_app_in};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_writes() {
    let app = spawn_app().await;
    let m = app.wallet("drain").await;
    let mut requests = Vec::new();
    for i in 0..100 {
        let (client, token) = (app.client.clone(), app.token.clone());
        let url = format!("{}{m}/earnings", app.base);
        requests.push(tokio::spawn(async move {
            let body = json!({"order_id": format!("D{i}"), "order_total": 100});
            client
                .post(url)
                .bearer_auth(&token)
                .header("idempotency-key", format!("drain-{i}"))
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let dir = app.stop_keeping_data().await;
    let mut completed = 0;
    for request in requests {
        match request.await.unwrap() {
            Ok(status) => {
                assert_eq!(status, 200, "an accepted request must complete, not fail");
                completed += 1;
            }
            Err(e) => assert!(
                e.is_connect() || e.is_request(),
                "only refused connections may fail: {e}"
            ),
        }
    }
    eprintln!("shutdown test: {completed} of 100 writes completed");
    let app = spawn_app_in(dir).await;
    let balance = app.get(&format!("{m}/balance")).await;
    assert_eq!(
        balance.body["points_available"],
        json!(completed),
        "every completed write is durable"
    );
    app.stop().await;
}
