//! The gRPC port: the services this process serves to others, with health and reflection.

use super::campaign::CampaignServer;
use super::ledger::LedgerServer;
use super::member::MemberServer;
use anyhow::Context;
use loyalty_identity::grpc::IdentityGrpc;
use loyalty_proto::identity::v1::identity_service_server::IdentityServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The gRPC services of this process.
#[derive(Default)]
pub struct GrpcServices {
    pub ledger: Option<LedgerServer>,
    pub identity: Option<IdentityServiceServer<IdentityGrpc>>,
    pub member: Option<MemberServer>,
    pub campaign: Option<CampaignServer>,
}

impl GrpcServices {
    pub fn is_empty(&self) -> bool {
        self.ledger.is_none()
            && self.identity.is_none()
            && self.member.is_none()
            && self.campaign.is_none()
    }

    /// Serves them on `listener` until shutdown.
    pub async fn serve(
        self,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let (reporter, health) = tonic_health::server::health_reporter();
        if self.ledger.is_some() {
            reporter
                .set_service_status(
                    <LedgerServer as tonic::server::NamedService>::NAME,
                    tonic_health::ServingStatus::Serving,
                )
                .await;
        }
        if self.identity.is_some() {
            reporter
                .set_serving::<IdentityServiceServer<IdentityGrpc>>()
                .await;
        }
        if self.member.is_some() {
            reporter
                .set_service_status(
                    <MemberServer as tonic::server::NamedService>::NAME,
                    tonic_health::ServingStatus::Serving,
                )
                .await;
        }
        if self.campaign.is_some() {
            reporter
                .set_service_status(
                    <CampaignServer as tonic::server::NamedService>::NAME,
                    tonic_health::ServingStatus::Serving,
                )
                .await;
        }
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(loyalty_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("building gRPC reflection")?;
        tonic::transport::Server::builder()
            .layer(loyalty_telemetry::GrpcMetricsLayer)
            // A server span per call, child of the caller's trace context.
            .layer(loyalty_telemetry::GrpcTraceLayer)
            .add_service(health)
            .add_service(reflection)
            .add_optional_service(self.ledger)
            .add_optional_service(self.identity)
            .add_optional_service(self.member)
            .add_optional_service(self.campaign)
            .serve_with_incoming_shutdown(
                // No Nagle delay: small unary replies must leave at once.
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                },
            )
            .await
            .context("the gRPC server failed")
    }
}
