//! The guard's audit duties on the member service's gRPC port (callers with real
//! credentials are covered end to end in `tests/it/member_grpc.rs`): an unmasked read is
//! recorded before the data leaves, and none leaves when it cannot be recorded. And the
//! birthday list through the port, with its rebuild recorded as a write.

use super::*;
use crate::grpc_access::guard;
use crate::profile::Personal;
use crate::service::ProfileInput;
use crate::store::EmbeddedMemberStore;
use crate::vault::MasterKey;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::{ManualClock, Timestamp};
use loyalty_identity::checks::{Act, Caller, CallerChecks};
use loyalty_identity::permissions::Permission;
use loyalty_identity::service::{Principal, PrincipalKind};
use loyalty_proto::member::v1::member_service_client::MemberServiceClient;
use std::sync::Mutex;

/// Lets every caller in and keeps what it is asked to record (or fails to, when `broken`).
#[derive(Default)]
struct Checks {
    recorded: Mutex<Vec<(String, String)>>,
    broken: bool,
}

#[async_trait]
impl CallerChecks for Checks {
    async fn authenticate(&self, _: &str) -> ServiceResult<Principal> {
        Ok(Principal {
            subject: "staff:test".into(),
            tenant: "acme".into(),
            kind: PrincipalKind::System,
        })
    }

    async fn authorize(&self, _: Caller<'_>, _: &str, _: Permission, _: &str) -> ServiceResult<()> {
        Ok(())
    }

    async fn record(&self, _: Caller<'_>, act: Act<'_>) -> ServiceResult<()> {
        if self.broken {
            return Err(ServiceError::unavailable("the audit log is down"));
        }
        let mut recorded = self.recorded.lock().unwrap();
        recorded.push((act.action.to_string(), act.target.to_string()));
        Ok(())
    }
}

struct Harness {
    client: MemberServiceClient<tonic::transport::Channel>,
    checks: Arc<Checks>,
    _dir: tempfile::TempDir,
}

/// The guarded service on a loopback port, with member m1 of acme registered.
async fn harness(broken: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedMemberStore::open(dir.path()).unwrap();
    let master = MasterKey::generate().unwrap().0;
    let clock = ManualClock::new(Timestamp(1_800_000_000_000));
    let members = Arc::new(Members::new(Arc::new(store), master, clock));
    let input = ProfileInput {
        personal: Personal {
            phone: Some("13812345678".into()),
            ..Personal::default()
        },
        ..ProfileInput::default()
    };
    let (tenant, member) = (
        TenantId::parse("acme").unwrap(),
        MemberId::parse("m1").unwrap(),
    );
    members.register(&tenant, &member, input).await.unwrap();
    let checks = Arc::new(Checks {
        broken,
        ..Checks::default()
    });
    let server = guard(Arc::clone(&checks) as Arc<dyn CallerChecks>)
        .around(MemberGrpc::new(members).into_server());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(incoming),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Harness {
        client: MemberServiceClient::new(channel),
        checks,
        _dir: dir,
    }
}

fn m1() -> Request<pb::MemberRef> {
    let mut request = Request::new(pb::MemberRef {
        tenant_id: "acme".into(),
        member_id: "m1".into(),
    });
    let credential = "Bearer test".parse().unwrap();
    request.metadata_mut().insert("authorization", credential);
    request
}

#[tokio::test]
async fn an_unmasked_read_is_recorded_and_so_is_a_write() {
    let mut h = harness(false).await;
    let profile = h
        .client
        .get_profile_unmasked(m1())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        profile.personal.unwrap().phone.as_deref(),
        Some("13812345678")
    );
    // A masked read is not recorded; a write is, under the method's name.
    h.client.get_profile(m1()).await.unwrap();
    h.client.erase_member(m1()).await.unwrap();
    let recorded = h.checks.recorded.lock().unwrap().clone();
    let target = "member:acme/m1".to_string();
    assert_eq!(
        recorded,
        [
            ("member.read_unmasked".to_string(), target.clone()),
            ("member.v1.MemberService/EraseMember".to_string(), target),
        ]
    );
}

#[tokio::test]
async fn no_personal_data_leaves_when_its_read_cannot_be_recorded() {
    let mut h = harness(true).await;
    let err = h.client.get_profile_unmasked(m1()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert!(!err.message().contains("13812345678"));
}

#[tokio::test]
async fn a_call_without_a_credential_is_refused_before_the_service_runs() {
    let mut h = harness(false).await;
    let bare = Request::new(pb::MemberRef {
        tenant_id: "acme".into(),
        member_id: "m1".into(),
    });
    let err = h.client.erase_member(bare).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let profile = h.client.get_profile(m1()).await.unwrap().into_inner();
    assert!(!profile.member_id.is_empty(), "the member was not erased");
    assert!(h.checks.recorded.lock().unwrap().is_empty());
}

/// `message` with the test's credential.
fn authorized<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    let credential = "Bearer test".parse().unwrap();
    request.metadata_mut().insert("authorization", credential);
    request
}

#[tokio::test]
async fn members_born_on_a_day_are_listed_by_id_and_a_day_that_is_none_is_named() {
    let mut h = harness(false).await;
    for (m, birthday) in [
        ("m3", "2000-02-29"),
        ("m2", "1992-02-29"),
        ("m4", "2000-03-01"),
    ] {
        let register = pb::RegisterMemberRequest {
            member: Some(pb::MemberRef {
                tenant_id: "acme".into(),
                member_id: m.into(),
            }),
            personal: Some(pb::Personal {
                birthday: Some(birthday.into()),
                ..pb::Personal::default()
            }),
            ..pb::RegisterMemberRequest::default()
        };
        h.client
            .register_member(authorized(register))
            .await
            .unwrap();
    }
    let born = |after: &str, limit: u32| pb::ListMembersBornOnRequest {
        tenant_id: "acme".into(),
        month: 2,
        day: 29,
        after: after.into(),
        limit,
    };
    let first = h.client.list_members_born_on(authorized(born("", 1))).await;
    let first = first.unwrap().into_inner();
    assert_eq!(
        (first.member_ids, first.next_cursor),
        (vec!["m2".into()], "m2".into())
    );
    let rest = h
        .client
        .list_members_born_on(authorized(born("m2", 0)))
        .await;
    let rest = rest.unwrap().into_inner();
    assert_eq!(
        (rest.member_ids, rest.next_cursor),
        (vec!["m3".into()], String::new())
    );

    let no_day = pb::ListMembersBornOnRequest {
        day: 30,
        ..born("", 10)
    };
    let err = h.client.list_members_born_on(authorized(no_day)).await;
    let err = err.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().starts_with("day"), "{}", err.message());

    // The rebuild is a write over the tenant, recorded under its name.
    let tenant = pb::TenantRef {
        tenant_id: "acme".into(),
    };
    let run = h.client.rebuild_birthday_index(authorized(tenant)).await;
    let run = run.unwrap().into_inner();
    assert_eq!((run.members, run.changed), (4, 0));
    let recorded = h.checks.recorded.lock().unwrap().clone();
    assert_eq!(
        recorded.last(),
        Some(&(
            "member.v1.MemberService/RebuildBirthdayIndex".to_string(),
            "birthday-index:acme".to_string()
        ))
    );
}
