//! Who may call which `ledger.v1` method from another process: the table below, checked for
//! every call by the guard in front of the gRPC service ([`loyalty_identity::grpc_guard`]).
//! The caller must belong to the request's tenant and hold the permission; its writes are
//! audited there. Callers in this process use the in-process client instead
//! ([`crate::client`]), checked by the edge they came in by.

use loyalty_identity::checks::CallerChecks;
use loyalty_identity::grpc_guard::{GuardLayer, Rpc};
use loyalty_identity::permissions as p;
use loyalty_identity::rpc;
use loyalty_proto::ledger::v1 as pb;
use std::sync::Arc;

/// The full service name, which prefixes the actions of audited writes.
const SERVICE: &str = "ledger.v1.LedgerService";

/// The tenant a wallet reference names ("" if none: the guard refuses it), and the audit
/// target.
fn wallet(wallet: &Option<pb::WalletRef>) -> (String, String) {
    wallet.as_ref().map_or_else(Default::default, |w| {
        let target = format!("member:{}/{}", w.tenant_id, w.member_id);
        (w.tenant_id.clone(), target)
    })
}

/// Every method of `ledger.v1.LedgerService`, the permission it needs and its scope.
pub const RPCS: &[Rpc] = &[
    rpc!("OpenWallet", p::WALLET_WRITE, pb::OpenWalletRequest, |r| {
        wallet(&r.wallet)
    }),
    rpc!("Earn", p::WALLET_WRITE, pb::EarnRequest, |r| wallet(
        &r.wallet
    )),
    rpc!("Redeem", p::WALLET_WRITE, pb::RedeemRequest, |r| wallet(
        &r.wallet
    )),
    rpc!("CaptureHold", p::WALLET_WRITE, pb::HoldActionRequest, |r| {
        wallet(&r.wallet)
    }),
    rpc!("VoidHold", p::WALLET_WRITE, pb::HoldActionRequest, |r| {
        wallet(&r.wallet)
    }),
    rpc!("Reverse", p::WALLET_WRITE, pb::ReverseRequest, |r| wallet(
        &r.wallet
    )),
    rpc!("Adjust", p::ADJUST, pb::AdjustRequest, |r| wallet(
        &r.wallet
    )),
    rpc!(
        "AdjustBonusValue",
        p::ADJUST,
        pb::AdjustBonusValueRequest,
        |r| wallet(&r.wallet)
    ),
    rpc!("Transfer", p::WALLET_WRITE, pb::TransferRequest, |r| {
        let target = format!("member:{}/{}", r.tenant_id, r.from_member_id);
        (r.tenant_id, target)
    }),
    rpc!("TopUp", p::WALLET_WRITE, pb::TopUpRequest, |r| wallet(
        &r.wallet
    )),
    rpc!("Spend", p::WALLET_WRITE, pb::SpendRequest, |r| wallet(
        &r.wallet
    )),
    rpc!("Refund", p::WALLET_WRITE, pb::RefundRequest, |r| wallet(
        &r.wallet
    )),
    rpc!("GetBalance", p::WALLET_READ, pb::WalletRef, |r| wallet(
        &Some(r)
    )),
    rpc!("ListHistory", p::WALLET_READ, pb::ListHistoryRequest, |r| {
        wallet(&r.wallet)
    }),
    rpc!(
        "ListExpiring",
        p::WALLET_READ,
        pb::ListExpiringRequest,
        |r| wallet(&r.wallet)
    ),
    rpc!("PutRules", p::RULES_WRITE, pb::PutRulesRequest, |r| {
        let target = format!("rules:{}", r.tenant_id);
        (r.tenant_id, target)
    }),
    rpc!("GetRules", p::RULES_READ, pb::GetRulesRequest, |r| (
        r.tenant_id,
        String::new()
    )),
];

/// The guard of the ledger's gRPC service, asking `identity` about callers.
pub fn guard(identity: Arc<dyn CallerChecks>) -> GuardLayer {
    GuardLayer::new(identity, SERVICE, RPCS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn every_method_of_the_service_is_in_the_table() {
        let set =
            prost_types::FileDescriptorSet::decode(loyalty_proto::FILE_DESCRIPTOR_SET).unwrap();
        let (package, service) = set
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
            .find(|(_, s)| s.name() == "LedgerService")
            .unwrap();
        assert_eq!(format!("{package}.{}", service.name()), SERVICE);
        let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        let table: Vec<&str> = RPCS.iter().map(|rpc| rpc.method).collect();
        assert_eq!(methods, table);
    }
}
