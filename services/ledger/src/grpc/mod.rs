//! The `ledger.v1` gRPC port: each method hands its request to the ledger's in-process
//! client, which parses and runs it. Who may call what is checked in front of the service,
//! once per call ([`crate::grpc_access`]), not here.

pub mod convert;

use crate::client::{InProcessLedger, LedgerClient};
use crate::service::Ledger;
use loyalty_proto::ledger::v1 as pb;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The gRPC face of the ledger.
#[derive(Clone)]
pub struct LedgerGrpc {
    ledger: InProcessLedger,
}

impl LedgerGrpc {
    pub fn new(ledger: Arc<Ledger>) -> Self {
        Self {
            ledger: InProcessLedger::new(ledger),
        }
    }

    /// The tonic service, ready to mount (behind [`crate::grpc_access::guard`]).
    pub fn into_server(self) -> pb::ledger_service_server::LedgerServiceServer<Self> {
        pb::ledger_service_server::LedgerServiceServer::new(self)
    }
}

/// Serves `method` by the in-process client.
macro_rules! serve {
    ($($method:ident($request:ty) -> $reply:ty;)*) => {
        #[tonic::async_trait]
        impl pb::ledger_service_server::LedgerService for LedgerGrpc {
            $(
                async fn $method(
                    &self,
                    request: Request<$request>,
                ) -> Result<Response<$reply>, Status> {
                    let reply = self.ledger.$method(request.into_inner()).await?;
                    Ok(Response::new(reply))
                }
            )*
        }
    };
}

serve! {
    open_wallet(pb::OpenWalletRequest) -> pb::WriteResult;
    earn(pb::EarnRequest) -> pb::WriteResult;
    redeem(pb::RedeemRequest) -> pb::WriteResult;
    capture_hold(pb::HoldActionRequest) -> pb::WriteResult;
    void_hold(pb::HoldActionRequest) -> pb::WriteResult;
    reverse(pb::ReverseRequest) -> pb::WriteResult;
    adjust(pb::AdjustRequest) -> pb::WriteResult;
    adjust_bonus_value(pb::AdjustBonusValueRequest) -> pb::WriteResult;
    transfer(pb::TransferRequest) -> pb::TransferResult;
    top_up(pb::TopUpRequest) -> pb::WriteResult;
    spend(pb::SpendRequest) -> pb::WriteResult;
    refund(pb::RefundRequest) -> pb::WriteResult;
    get_balance(pb::WalletRef) -> pb::Balance;
    list_history(pb::ListHistoryRequest) -> pb::HistoryPage;
    list_expiring(pb::ListExpiringRequest) -> pb::ExpiringPoints;
    put_rules(pb::PutRulesRequest) -> pb::RuleSet;
    get_rules(pb::GetRulesRequest) -> pb::RuleSet;
}
