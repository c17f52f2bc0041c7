//! The ledger in another process, over its gRPC port. Every ledger write carries an
//! idempotency key and every read is safe to repeat, so each call is retried when the ledger
//! was unreachable or overloaded ([`retry_idempotent`]).

use super::LedgerClient;
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_proto::ledger::v1 as pb;
use loyalty_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use loyalty_proto::transport::{Transport, retry_idempotent};

/// A client of the ledger's replicas behind `transport` ([`loyalty_proto::transport::connect`]).
#[derive(Clone)]
pub struct GrpcLedgerClient {
    client: LedgerServiceClient<Transport>,
}

impl GrpcLedgerClient {
    pub fn new(transport: Transport) -> Self {
        Self {
            client: LedgerServiceClient::new(transport),
        }
    }
}

/// Calls `method` with `request`, again if the ledger could not be reached.
macro_rules! call {
    ($self:ident, $method:ident, $request:ident) => {{
        let reply = retry_idempotent(|| {
            let mut client = $self.client.clone();
            let request = $request.clone();
            async move { client.$method(request).await }
        })
        .await?;
        Ok(reply.into_inner())
    }};
}

#[async_trait]
impl LedgerClient for GrpcLedgerClient {
    async fn open_wallet(&self, r: pb::OpenWalletRequest) -> ServiceResult<pb::WriteResult> {
        call!(self, open_wallet, r)
    }
    async fn earn(&self, r: pb::EarnRequest) -> ServiceResult<pb::WriteResult> {
        call!(self, earn, r)
    }
    async fn redeem(&self, r: pb::RedeemRequest) -> ServiceResult<pb::WriteResult> {
        call!(self, redeem, r)
    }
    async fn capture_hold(&self, r: pb::HoldActionRequest) -> ServiceResult<pb::WriteResult> {
        call!(self, capture_hold, r)
    }
    async fn void_hold(&self, r: pb::HoldActionRequest) -> ServiceResult<pb::WriteResult> {
        call!(self, void_hold, r)
    }
    async fn reverse(&self, r: pb::ReverseRequest) -> ServiceResult<pb::WriteResult> {
        call!(self, reverse, r)
    }
    async fn adjust(&self, r: pb::AdjustRequest) -> ServiceResult<pb::WriteResult> {
        call!(self, adjust, r)
    }

    async fn adjust_bonus_value(
        &self,
        r: pb::AdjustBonusValueRequest,
    ) -> ServiceResult<pb::WriteResult> {
        call!(self, adjust_bonus_value, r)
    }
    async fn transfer(&self, r: pb::TransferRequest) -> ServiceResult<pb::TransferResult> {
        call!(self, transfer, r)
    }
    async fn top_up(&self, r: pb::TopUpRequest) -> ServiceResult<pb::WriteResult> {
        call!(self, top_up, r)
    }
    async fn spend(&self, r: pb::SpendRequest) -> ServiceResult<pb::WriteResult> {
        call!(self, spend, r)
    }
    async fn refund(&self, r: pb::RefundRequest) -> ServiceResult<pb::WriteResult> {
        call!(self, refund, r)
    }
    async fn get_balance(&self, r: pb::WalletRef) -> ServiceResult<pb::Balance> {
        call!(self, get_balance, r)
    }
    async fn list_history(&self, r: pb::ListHistoryRequest) -> ServiceResult<pb::HistoryPage> {
        call!(self, list_history, r)
    }
    async fn list_expiring(&self, r: pb::ListExpiringRequest) -> ServiceResult<pb::ExpiringPoints> {
        call!(self, list_expiring, r)
    }
    async fn put_rules(&self, r: pb::PutRulesRequest) -> ServiceResult<pb::RuleSet> {
        call!(self, put_rules, r)
    }
    async fn get_rules(&self, r: pb::GetRulesRequest) -> ServiceResult<pb::RuleSet> {
        call!(self, get_rules, r)
    }
}
