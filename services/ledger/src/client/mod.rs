//! How other services call the ledger: one trait, [`LedgerClient`], in the `ledger.v1`
//! messages (the ledger's published contract), with an implementation in this process
//! ([`InProcessLedger`]: no encoding, no socket, no second access check) and one over gRPC
//! ([`GrpcLedgerClient`]: balanced over the ledger's replicas, with deadlines and retries).
//! A caller cannot tell which it has.
//!
//! Access is checked once, at the edge a request came in by: the REST gateway checks its
//! callers before it calls the in-process client; the ledger's gRPC port checks callers from
//! other processes ([`crate::grpc_access`]).

mod grpc;
mod in_process;

pub use grpc::GrpcLedgerClient;
pub use in_process::InProcessLedger;

use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_proto::ledger::v1 as pb;

/// The ledger's operations. Every write carries an idempotency key: sent twice, it is applied
/// once and the second answer says `replayed`.
#[async_trait]
pub trait LedgerClient: Send + Sync + 'static {
    async fn open_wallet(&self, r: pb::OpenWalletRequest) -> ServiceResult<pb::WriteResult>;
    async fn earn(&self, r: pb::EarnRequest) -> ServiceResult<pb::WriteResult>;
    async fn redeem(&self, r: pb::RedeemRequest) -> ServiceResult<pb::WriteResult>;
    async fn capture_hold(&self, r: pb::HoldActionRequest) -> ServiceResult<pb::WriteResult>;
    async fn void_hold(&self, r: pb::HoldActionRequest) -> ServiceResult<pb::WriteResult>;
    async fn reverse(&self, r: pb::ReverseRequest) -> ServiceResult<pb::WriteResult>;
    async fn adjust(&self, r: pb::AdjustRequest) -> ServiceResult<pb::WriteResult>;
    async fn adjust_bonus_value(
        &self,
        r: pb::AdjustBonusValueRequest,
    ) -> ServiceResult<pb::WriteResult>;
    async fn transfer(&self, r: pb::TransferRequest) -> ServiceResult<pb::TransferResult>;
    async fn top_up(&self, r: pb::TopUpRequest) -> ServiceResult<pb::WriteResult>;
    async fn spend(&self, r: pb::SpendRequest) -> ServiceResult<pb::WriteResult>;
    async fn refund(&self, r: pb::RefundRequest) -> ServiceResult<pb::WriteResult>;
    async fn get_balance(&self, r: pb::WalletRef) -> ServiceResult<pb::Balance>;
    async fn list_history(&self, r: pb::ListHistoryRequest) -> ServiceResult<pb::HistoryPage>;
    async fn list_expiring(&self, r: pb::ListExpiringRequest) -> ServiceResult<pb::ExpiringPoints>;
    async fn put_rules(&self, r: pb::PutRulesRequest) -> ServiceResult<pb::RuleSet>;
    async fn get_rules(&self, r: pb::GetRulesRequest) -> ServiceResult<pb::RuleSet>;
}
