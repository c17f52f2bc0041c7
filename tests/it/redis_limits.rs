//! Rate limits shared in Redis (a throwaway `redis-server` per test): every gateway replica
//! counts against the same counters, a request refused by one limit is not counted against
//! the others, and an unreachable Redis lets requests through rather than stopping the tills.

use loyalty_gateway::limits::{RateLimitConfig, RateLimits, Scope};
use loyalty_gateway::limits_redis::RedisRateLimits;
use loyalty_gateway::testing::RedisServer;
use loyalty_tests::spawn_app_with;
use std::time::{Duration, Instant};

fn config(redis: &RedisServer, per_api_key: u32, per_tenant: u32) -> RateLimitConfig {
    RateLimitConfig {
        per_api_key,
        per_tenant,
        redis_url: Some(redis.url()),
        redis_timeout_ms: 200,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_counters_and_keys_are_counted_apart() {
    let redis = RedisServer::start().await;
    let one = RedisRateLimits::connect(&config(&redis, 5, 0))
        .await
        .unwrap();
    let two = RedisRateLimits::connect(&config(&redis, 5, 0))
        .await
        .unwrap();
    let key_a = [(Scope::ApiKey, "key:a")];
    for replica in [&one, &two, &one, &two, &one] {
        assert!(replica.admit("acme", &key_a).await.is_ok());
    }
    let (scope, wait) = two.admit("acme", &key_a).await.unwrap_err();
    assert_eq!(scope, Scope::ApiKey);
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(200),
        "{wait:?}"
    );
    assert!(
        one.admit("acme", &key_a).await.is_err(),
        "shared, not per replica"
    );
    assert!(
        one.admit("acme", &[(Scope::ApiKey, "key:b")]).await.is_ok(),
        "another key"
    );
    // One second's worth comes back in a second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for _ in 0..5 {
        assert!(two.admit("acme", &key_a).await.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_one_limit_counts_against_none() {
    let redis = RedisServer::start().await;
    // Three a second for the key (one back every 333 ms), two for the tenant.
    let limits = RedisRateLimits::connect(&config(&redis, 3, 2))
        .await
        .unwrap();
    let both = [(Scope::ApiKey, "key:a"), (Scope::Tenant, "acme")];
    assert!(limits.admit("acme", &both).await.is_ok());
    assert!(limits.admit("acme", &both).await.is_ok());
    for _ in 0..20 {
        let (scope, _) = limits.admit("acme", &both).await.unwrap_err();
        assert_eq!(scope, Scope::Tenant);
    }
    // The key was counted twice only: with the tenant's limit off, one more passes.
    let off = RedisRateLimits::connect(&config(&redis, 3, 0))
        .await
        .unwrap();
    assert!(
        off.admit("acme", &both).await.is_ok(),
        "the refusals were not counted"
    );
    let (scope, _) = off.admit("acme", &both).await.unwrap_err();
    assert_eq!(scope, Scope::ApiKey);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_requests_pass_uncounted_and_counting_resumes() {
    let mut redis = RedisServer::start().await;
    let limits = RedisRateLimits::connect(&config(&redis, 3, 0))
        .await
        .unwrap();
    let key = [(Scope::ApiKey, "key:a")];
    redis.stop().await;
    let started = Instant::now();
    for _ in 0..10 {
        assert!(limits.admit("acme", &key).await.is_ok(), "let through");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "each waits at most the timeout: {:?}",
        started.elapsed()
    );
    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let refused = limits.admit("acme", &key).await.is_err();
        if refused {
            break;
        }
        assert!(Instant::now() < deadline, "counting did not resume");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_unreachable_redis_at_start_is_a_clear_error() {
    // A port bound but never listened on: connections to it are refused, and no other test
    // can start a server there meanwhile (a stopped server's port could be reused).
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = reserved.local_addr().unwrap().port();
    let unreachable = RateLimitConfig {
        per_api_key: 5,
        per_tenant: 5,
        redis_url: Some(format!("redis://127.0.0.1:{port}")),
        redis_timeout_ms: 100,
    };
    let Err(error) = RedisRateLimits::connect(&unreachable).await else {
        panic!("connected to a stopped Redis");
    };
    assert!(error.contains("cannot reach Redis"), "{error}");
    assert!(error.contains("redis_url"), "says what to do: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memberd_counts_api_keys_in_redis() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir, move |c| {
        c.gateway.rate_limits.per_api_key = 3;
        c.gateway.rate_limits.redis_url = Some(url);
    })
    .await;
    let key = app.acme_partner_key().await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = app
            .get_with_key("/v1/tenants/acme/members/m1/balance", &key)
            .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [404, 404, 404, 429, 429], "{statuses:?}");
    // The counter is in Redis, under the tenant's hash tag.
    let subject = format!("key:{}", key.split('_').nth(1).unwrap());
    let counter = loyalty_gateway::limits_redis::counter_key("acme", Scope::ApiKey, &subject);
    let output = tokio::process::Command::new("redis-cli")
        .args(["-u", &redis.url(), "EXISTS", &counter])
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "1",
        "{counter}"
    );
    app.stop().await;
}
