//! The member service role: its store (embedded or ScyllaDB), the ledger it earns in (through
//! the ledger's client), its outbox's publisher, its scheduled work, and its gRPC service.

use super::Process;
use super::platform::PlatformWork;
use crate::members;
use crate::schedule::SchedulerLease;
use anyhow::Context;
use loyalty_identity::grpc_guard::Guarded;
use loyalty_ledger::client::LedgerClient;
use loyalty_member::client::{GrpcMemberClient, InProcessMembers, MemberClient};
use loyalty_member::grpc::MemberGrpc;
use loyalty_member::grpc_access;
use loyalty_member::ledger::Ledger;
use loyalty_member::service::Members;
use loyalty_proto::member::v1::member_service_server::MemberServiceServer;
use std::sync::Arc;

pub type MemberServer = Guarded<MemberServiceServer<MemberGrpc>>;

/// The member service of this process.
pub struct MemberRole {
    pub members: Arc<Members>,
    /// Its client, for the roles of this process that call it.
    pub client: Arc<dyn MemberClient>,
    /// Its gRPC service, where other processes reach it.
    pub server: Option<MemberServer>,
}

/// Starts the member service, earning in `ledger`, with its gRPC service.
pub async fn start(
    process: &mut Process<'_>,
    ledger: Arc<dyn LedgerClient>,
) -> anyhow::Result<MemberRole> {
    let config = process.config;
    let store = match process.scylla {
        Some(scylla) => Some(members::scylla_store(scylla).await?),
        None => None,
    };
    let members = members::start_on(config, Some(Arc::new(Ledger(ledger))), store)?;
    if let Some(events) = process.events {
        let outbox = loyalty_member::events::outbox(Arc::clone(members.repository()));
        process.tasks.extend(events.start(Arc::new(outbox)));
    }
    let (scheduled, settings, shutdown) = (
        Arc::clone(&members),
        config.member.clone(),
        process.shutdown.clone(),
    );
    // The review reads points from the ledger when tiers are measured in points.
    let platform = PlatformWork::of(config, "member")?;
    let lease = SchedulerLease::of(process, "member", "member-schedule").await?;
    let regions = process.regions.clone();
    process.tasks.push(tokio::spawn(async move {
        members::schedule(scheduled, settings, platform, lease, shutdown, regions).await;
        Ok(())
    }));
    // Its port serves personal data: it never runs without checking its callers.
    let checks = process.caller_checks()?.context(
        "the member service's gRPC port needs the identity service: set identity_endpoint",
    )?;
    let guard = grpc_access::guard(checks);
    let server = Some(guard.around(MemberGrpc::new(Arc::clone(&members)).into_server()));
    let client = Arc::new(InProcessMembers::new(Arc::clone(&members)));
    Ok(MemberRole {
        members,
        client,
        server,
    })
}

/// The member service in another process, at `member_endpoint`.
pub fn remote(process: &Process<'_>) -> anyhow::Result<Arc<dyn MemberClient>> {
    let endpoint = &process.config.member_endpoint;
    let transport = loyalty_proto::transport::connect(endpoint, process.deadline())
        .map_err(|e| anyhow::anyhow!("member_endpoint {endpoint}: {e}"))?;
    Ok(Arc::new(GrpcMemberClient::new(transport)))
}
