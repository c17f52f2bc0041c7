//! The service's own audit duties for calls the gateway passes on in process (network callers
//! are covered end to end in `tests/it/member_grpc.rs`).

use super::*;
use crate::grpc_access::{Authenticated, access};
use crate::profile::Personal;
use crate::service::ProfileInput;
use crate::store::EmbeddedMemberStore;
use crate::vault::MasterKey;
use async_trait::async_trait;
use loyalty_common::{ManualClock, Timestamp};
use loyalty_identity::checks::{Act, Caller, CallerChecks};
use loyalty_identity::permissions::Permission;
use loyalty_identity::service::{Principal, PrincipalKind};
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
        Err(ServiceError::new(
            ErrorCode::Unauthenticated,
            "in process only",
        ))
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
    grpc: MemberGrpc,
    checks: Arc<Checks>,
    _dir: tempfile::TempDir,
}

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
    let access = access(Arc::clone(&checks) as Arc<dyn CallerChecks>);
    Harness {
        grpc: MemberGrpc::new(members, access),
        checks,
        _dir: dir,
    }
}

/// A call as the gateway passes it on: with the caller it authenticated.
fn from_gateway<T>(message: T) -> Request<T> {
    let mut req = Request::new(message);
    req.extensions_mut().insert(Authenticated {
        principal: Principal {
            subject: "staff:test".into(),
            tenant: "acme".into(),
            kind: PrincipalKind::System,
        },
        store: None,
    });
    req
}

fn m1() -> pb::MemberRef {
    pb::MemberRef {
        tenant_id: "acme".into(),
        member_id: "m1".into(),
    }
}

#[tokio::test]
async fn an_unmasked_read_is_recorded_even_when_the_gateway_passed_it_on() {
    let h = harness(false).await;
    let profile = h
        .grpc
        .get_profile_unmasked(from_gateway(m1()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        profile.personal.unwrap().phone.as_deref(),
        Some("13812345678")
    );
    // The gateway records its own writes: the service adds nothing for them.
    h.grpc.erase_member(from_gateway(m1())).await.unwrap();
    let recorded = h.checks.recorded.lock().unwrap().clone();
    assert_eq!(
        recorded,
        [(
            "member.read_unmasked".to_string(),
            "member:acme/m1".to_string()
        )]
    );
}

#[tokio::test]
async fn no_personal_data_leaves_when_its_read_cannot_be_recorded() {
    let h = harness(true).await;
    let err = h
        .grpc
        .get_profile_unmasked(from_gateway(m1()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert!(!err.message().contains("13812345678"));
}
