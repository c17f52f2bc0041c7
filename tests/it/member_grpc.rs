//! The member service over gRPC (`member.v1.MemberService` on memberd's gRPC port): the
//! service checks every caller itself, reads are masked unless a caller allowed to unmask asks
//! (and that read is audited), and orders replay or conflict by their id, as over REST.

use loyalty_proto::member::v1 as pb;
use loyalty_proto::member::v1::member_service_client::MemberServiceClient;
use loyalty_tests::{TestApp, spawn_app};
use serde_json::json;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Adds a caller's credential to each call.
type Credential = Box<dyn FnMut(tonic::Request<()>) -> tonic::Result<tonic::Request<()>> + Send>;
type Client = MemberServiceClient<InterceptedService<Channel, Credential>>;

/// A client that sends `header: value` with every call (none for an anonymous one).
async fn client(app: &TestApp, header: Option<(&'static str, String)>) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(app.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let credential: Credential = Box::new(move |mut r: tonic::Request<()>| {
        if let Some((name, value)) = &header {
            r.metadata_mut().insert(*name, value.parse().unwrap());
        }
        Ok(r)
    });
    MemberServiceClient::with_interceptor(channel, credential)
}

fn admin(app: &TestApp) -> Option<(&'static str, String)> {
    Some(("authorization", format!("Bearer {}", app.token)))
}

fn member(id: &str) -> pb::MemberRef {
    pb::MemberRef {
        tenant_id: "acme".into(),
        member_id: id.into(),
    }
}

fn code(status: &tonic::Status) -> &str {
    status
        .metadata()
        .get("x-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The actions of acme's audit records whose target is `target`.
async fn audited(app: &TestApp, target: &str) -> Vec<(String, String)> {
    let audit = app.get("/v1/tenants/acme/audit?limit=500").await;
    assert_eq!(audit.status, 200, "{audit:?}");
    audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event"]["target"] == target)
        .map(|r| {
            let event = &r["event"];
            let action = event["action"].as_str().unwrap_or("").to_string();
            let result = event["outcome"]["result"]
                .as_str()
                .unwrap_or("")
                .to_string();
            (action, result)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_over_grpc_are_masked_unmasked_by_role_and_audited() {
    let app = spawn_app().await;
    let partner = app.acme_partner_key().await;
    let mut admin = client(&app, admin(&app)).await;
    let mut partner = client(&app, Some(("x-api-key", partner))).await;

    let health = tonic_health::pb::health_client::HealthClient::new(
        tonic::transport::Endpoint::from_shared(app.grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
    .check(tonic_health::pb::HealthCheckRequest {
        service: "member.v1.MemberService".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        health.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let registered = admin
        .register_member(pb::RegisterMemberRequest {
            member: Some(member("m1")),
            personal: Some(pb::Personal {
                name: Some("王小明".into()),
                phone: Some("138 1234 5678".into()),
                email: Some("alice@example.cn".into()),
                ..Default::default()
            }),
            channel: "app".into(),
            tags: vec!["vip".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let personal = registered.personal.unwrap();
    assert_eq!(personal.phone.as_deref(), Some("138****5678"));
    assert_eq!(personal.name.as_deref(), Some("王**"));
    assert_eq!(registered.tags, ["vip"]);

    // A partner reads the profile masked, and may not unmask it.
    let masked = partner
        .get_profile(member("m1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        masked.personal.unwrap().email.as_deref(),
        Some("a***@example.cn")
    );
    let refused = partner
        .get_profile_unmasked(member("m1"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");
    let clear = admin
        .get_profile_unmasked(member("m1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        clear.personal.unwrap().phone.as_deref(),
        Some("138 1234 5678")
    );

    // The unmasked read is in the tenant's audit log, and so is the write made over gRPC.
    let records = audited(&app, "member:acme/m1").await;
    let unmasked: Vec<_> = records
        .iter()
        .filter(|(action, _)| action == "member.read_unmasked")
        .collect();
    assert_eq!(unmasked.len(), 1, "{records:?}");
    assert_eq!(unmasked[0].1, "allowed");
    assert!(
        records.iter().any(|(action, result)| {
            action == "member.v1.MemberService/RegisterMember" && result == "allowed"
        }),
        "{records:?}"
    );

    let found = partner
        .find_member(pb::FindMemberRequest {
            tenant_id: "acme".into(),
            by: Some(pb::find_member_request::By::Phone("+86 13812345678".into())),
        })
        .await
        .unwrap();
    assert_eq!(found.into_inner().member_id, "m1");
    let twin = admin
        .register_member(pb::RegisterMemberRequest {
            member: Some(member("m2")),
            personal: Some(pb::Personal {
                phone: Some("13812345678".into()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(twin.code(), tonic::Code::AlreadyExists);
    assert_eq!(code(&twin), "DUPLICATE_MEMBER");

    let erased = admin.erase_member(member("m1")).await.unwrap().into_inner();
    assert_eq!(erased.state, "completed");
    let gone = partner.get_profile(member("m1")).await.unwrap_err();
    assert_eq!(code(&gone), "MEMBER_ERASED");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_over_grpc_replay_by_id_and_conflict_with_another_body() {
    let app = spawn_app().await;
    let partner = app.acme_partner_key().await;
    let mut admin = client(&app, admin(&app)).await;
    let mut till = client(&app, Some(("x-api-key", partner))).await;
    admin
        .register_member(pb::RegisterMemberRequest {
            member: Some(member("m1")),
            ..Default::default()
        })
        .await
        .unwrap();

    let order = pb::RecordOrderRequest {
        member: Some(member("m1")),
        order_id: "POS-1".into(),
        total: 12_000,
        lines: vec![pb::OrderLine {
            sku: "tea".into(),
            category: "drinks".into(),
            amount: 12_000,
        }],
        store: "s01".into(),
        ..Default::default()
    };
    let first = till.record_order(order.clone()).await.unwrap().into_inner();
    assert!(!first.replayed);
    let again = till.record_order(order.clone()).await.unwrap().into_inner();
    assert!(again.replayed);
    assert_eq!(
        again.order, first.order,
        "a replay returns the first recording"
    );

    let other = pb::RecordOrderRequest {
        total: 9_000,
        lines: vec![],
        ..order
    };
    let conflict = till.record_order(other).await.unwrap_err();
    assert_eq!(conflict.code(), tonic::Code::AlreadyExists, "{conflict}");
    assert_eq!(code(&conflict), "ORDER_CONFLICT");

    let page = till
        .list_orders(pb::ListOrdersRequest {
            member: Some(member("m1")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.orders.len(), 1);
    assert_eq!(page.next_cursor, "");
    let activity = till.get_activity(member("m1")).await.unwrap().into_inner();
    assert_eq!(
        (activity.lifetime_spend, activity.lifetime_orders),
        (12_000, 1)
    );
    assert!(!activity.lifecycle.is_empty());

    // A till records orders but may not change profiles.
    let refused = till
        .tag_member(pb::TagMemberRequest {
            member: Some(member("m1")),
            add: vec!["vip".into()],
            remove: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_of_another_tenant_and_anonymous_callers_are_refused() {
    let app = spawn_app().await;
    app.acme_partner_key().await;
    let globex = app
        .post("/v1/tenants", json!({"id": "globex", "name": "Globex"}))
        .await;
    assert_eq!(globex.status, 200, "{globex:?}");
    let key = app
        .post(
            "/v1/tenants/globex/api-keys",
            json!({"name": "crm", "roles": ["partner"]}),
        )
        .await;
    let globex_key = key.body["key"].as_str().unwrap().to_string();
    let mut admin = client(&app, admin(&app)).await;
    admin
        .register_member(pb::RegisterMemberRequest {
            member: Some(member("m1")),
            ..Default::default()
        })
        .await
        .unwrap();

    let mut stranger = client(&app, Some(("x-api-key", globex_key))).await;
    let err = stranger.get_profile(member("m1")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    assert_eq!(code(&err), "FORBIDDEN");
    let err = stranger
        .record_order(pb::RecordOrderRequest {
            member: Some(member("m1")),
            order_id: "POS-9".into(),
            total: 100,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");

    let mut anonymous = client(&app, None).await;
    let err = anonymous.get_profile(member("m1")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    let err = anonymous
        .get_profile_unmasked(member("m1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    let mut forged = client(&app, Some(("authorization", "Bearer not-a-token".into()))).await;
    let err = forged.get_activity(member("m1")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_born_on_a_day_are_listed_to_readers_and_rebuilt_by_the_programme() {
    let app = spawn_app().await;
    let partner = app.acme_partner_key().await;
    let mut admin = client(&app, admin(&app)).await;
    let mut partner = client(&app, Some(("x-api-key", partner))).await;
    for (m, birthday) in [
        ("m3", "1985-03-07"),
        ("m1", "1990-03-07"),
        ("m2", "2000-02-29"),
    ] {
        admin
            .register_member(pb::RegisterMemberRequest {
                member: Some(member(m)),
                personal: Some(pb::Personal {
                    birthday: Some(birthday.into()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    // A partner reads ids (member read, as a segment's members), nothing personal.
    let born = |month, day| pb::ListMembersBornOnRequest {
        tenant_id: "acme".into(),
        month,
        day,
        ..Default::default()
    };
    let page = partner.list_members_born_on(born(3, 7)).await.unwrap();
    let page = page.into_inner();
    assert_eq!(
        (page.member_ids, page.next_cursor),
        (vec!["m1".into(), "m3".into()], String::new())
    );
    let leap = partner.list_members_born_on(born(2, 29)).await.unwrap();
    assert_eq!(leap.into_inner().member_ids, ["m2"]);
    let err = partner.list_members_born_on(born(2, 30)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert_eq!(code(&err), "INVALID_ARGUMENT");
    assert!(err.message().starts_with("day"), "{err}");

    // The rebuild is the programme's (member.program write): not a partner's.
    let acme = || pb::TenantRef {
        tenant_id: "acme".into(),
    };
    let refused = partner.rebuild_birthday_index(acme()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");
    let run = admin.rebuild_birthday_index(acme()).await.unwrap();
    let run = run.into_inner();
    assert_eq!(
        (run.members, run.changed),
        (3, 0),
        "registered with the index"
    );
    let records = audited(&app, "birthday-index:acme").await;
    assert!(
        records.iter().any(|(action, result)| {
            action == "member.v1.MemberService/RebuildBirthdayIndex" && result == "allowed"
        }),
        "{records:?}"
    );
    app.stop().await;
}
