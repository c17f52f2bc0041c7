//! What one benchmark client sends: request generation and the three operation kinds.

use crate::pb::EchoRequest;
use crate::pb::echo_client::EchoClient;
use crate::rest::RestConn;
use crate::stats::Outcome;
use crate::target::Link;
use loyalty_common::error::{CODE_METADATA_KEY, ErrorCode};
use loyalty_proto::campaign::v1::campaign_service_client::CampaignServiceClient;
use loyalty_proto::campaign::v1::{
    Cart, ClaimRequest, Line, RedeemRequest as CouponRedeemRequest, ValidateCartRequest,
};
use loyalty_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use loyalty_proto::ledger::v1::{
    EarnRequest, HoldActionRequest, OrderLine, RedeemRequest, WalletRef,
};
use prost::Message;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Share of Earn operations in the `mix` phase; the rest are Redeem + CaptureHold pairs.
const MIX_EARN_SHARE: f64 = 0.8;
const CATEGORIES: &[&str] = &["grocery", "fuel", "apparel", "electronics", "pharmacy"];

/// What every client of a run shares.
#[derive(Debug)]
pub struct RunContext {
    /// Random per run; prefixes every idempotency key so keys never repeat across runs.
    pub run_id: String,
    pub tenant: String,
    pub members: u32,
    /// The flash sale of the claim phase (empty without one).
    pub sale: String,
    /// The coupon of each imported member, by member number (the redeem phase).
    pub codes: std::sync::OnceLock<Vec<String>>,
    /// The mall items the order phase orders, one at random per order.
    pub items: Vec<String>,
    /// Whether the order phase places and confirms each order in one call.
    pub orders_at_once: bool,
}

/// The member id of wallet number `i` (0-based).
pub fn member_id(i: u32) -> String {
    format!("m-{i:07}")
}

/// The id of imported member number `i` (0-based), as `loadtest/gen-members.py` writes it.
pub fn imported_member_id(i: u32) -> String {
    format!("M{i:08}")
}

impl RunContext {
    pub fn wallet(&self, member: u32) -> WalletRef {
        WalletRef {
            tenant_id: self.tenant.clone(),
            member_id: member_id(member),
        }
    }
}

/// The operation a phase repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One Earn on a random member.
    Earn,
    /// 80% Earn, 20% Redeem of a few points followed by CaptureHold of the hold it returned.
    Mix,
    /// One Echo carrying an encoded EarnRequest, against the no-op baseline server.
    Echo,
    /// One masked profile read (REST) of a random imported member.
    ProfileRead,
    /// One flash-sale claim (gRPC) for a random imported member, under a fresh claim id.
    Claim,
    /// The till's checkout: ValidateCart, then Redeem of a random member's coupon (gRPC),
    /// or the cart's evaluation then the redemption (REST).
    Redeem,
    /// A points-mall redemption order (gRPC): one of the run's items for a random imported
    /// member, placed under a fresh order id, then confirmed.
    Order,
}

enum Client {
    Ledger(LedgerServiceClient<crate::target::Conn>),
    Echo(EchoClient<crate::target::Conn>),
    Campaign(CampaignServiceClient<crate::target::Conn>),
    Rest(RestConn),
}

/// One benchmark client: its own connection handle, random stream and idempotency keys.
pub struct Worker {
    ctx: Arc<RunContext>,
    kind: Kind,
    client: Client,
    rng: SmallRng,
    key_prefix: String,
    seq: u64,
}

impl Worker {
    /// Client number `index` of `phase`; `link` is the connection it shares.
    pub fn new(ctx: Arc<RunContext>, phase: &str, index: usize, kind: Kind, link: Link) -> Self {
        let client = match (kind, link) {
            (Kind::Echo, Link::Grpc(channel)) => Client::Echo(EchoClient::new(channel)),
            (Kind::Claim | Kind::Redeem | Kind::Order, Link::Grpc(channel)) => {
                Client::Campaign(CampaignServiceClient::new(channel))
            }
            (_, Link::Grpc(channel)) => Client::Ledger(LedgerServiceClient::new(channel)),
            (_, Link::Rest(rest)) => Client::Rest(rest),
        };
        let key_prefix = format!("{}-{phase}-{index}", ctx.run_id);
        Self {
            ctx,
            kind,
            client,
            rng: SmallRng::from_rng(&mut rand::rng()),
            key_prefix,
            seq: 0,
        }
    }

    /// Runs one operation of this worker's kind.
    pub async fn op(&mut self) -> Outcome {
        match self.kind {
            Kind::Earn => self.earn().await,
            Kind::Mix if self.rng.random_bool(MIX_EARN_SHARE) => self.earn().await,
            Kind::Mix => self.redeem_and_capture().await,
            Kind::Echo => self.echo().await,
            Kind::ProfileRead => self.profile_read().await,
            Kind::Claim => self.claim().await,
            Kind::Redeem => self.validate_and_redeem().await,
            Kind::Order => self.order().await,
        }
    }

    fn next_key(&mut self) -> String {
        self.seq += 1;
        format!("{}-{}", self.key_prefix, self.seq)
    }

    fn random_wallet(&mut self) -> WalletRef {
        let member = self.rng.random_range(0..self.ctx.members);
        self.ctx.wallet(member)
    }

    /// An order of 1-3 lines on a random member, with a fresh idempotency key.
    fn earn_request(&mut self) -> EarnRequest {
        let idempotency_key = self.next_key();
        let lines: Vec<OrderLine> = (0..self.rng.random_range(1..=3))
            .map(|_| OrderLine {
                sku: format!("sku-{:05}", self.rng.random_range(0..50_000)),
                category: CATEGORIES[self.rng.random_range(0..CATEGORIES.len())].to_string(),
                amount: self.rng.random_range(100..=20_000),
            })
            .collect();
        EarnRequest {
            wallet: Some(self.random_wallet()),
            order_id: format!("o-{idempotency_key}"),
            idempotency_key,
            order_total: lines.iter().map(|l| l.amount).sum(),
            lines,
            occurred_at_ms: 0,
            tier_multiplier_bp: 0,
        }
    }

    async fn earn(&mut self) -> Outcome {
        let request = self.earn_request();
        match &mut self.client {
            Client::Ledger(client) => match client.earn(request).await {
                Ok(_) => Outcome::Ok,
                Err(status) => classify(&status),
            },
            Client::Rest(rest) => rest.earn(request).await,
            Client::Echo(_) | Client::Campaign(_) => {
                Outcome::Error("earn-without-ledger-client".into())
            }
        }
    }

    async fn profile_read(&mut self) -> Outcome {
        let member = imported_member_id(self.rng.random_range(0..self.ctx.members));
        match &self.client {
            Client::Rest(rest) => rest.profile(&self.ctx.tenant, &member).await,
            _ => Outcome::Error("profile-read-without-rest-client".into()),
        }
    }

    async fn claim(&mut self) -> Outcome {
        let request = ClaimRequest {
            tenant_id: self.ctx.tenant.clone(),
            sale_id: self.ctx.sale.clone(),
            claim_id: self.next_key(),
            member_id: imported_member_id(self.rng.random_range(0..self.ctx.members)),
        };
        let Client::Campaign(client) = &mut self.client else {
            return Outcome::Error("claim-without-campaign-client".into());
        };
        match client.claim_flash_sale(request).await {
            Ok(_) => Outcome::Ok,
            Err(status) => classify(&status),
        }
    }

    async fn order(&mut self) -> Outcome {
        let Some(item) = self
            .ctx
            .items
            .get(self.rng.random_range(0..self.ctx.items.len().max(1)))
        else {
            return Outcome::Error("order-without-items".into());
        };
        let item = item.clone();
        let member = imported_member_id(self.rng.random_range(0..self.ctx.members));
        let order_id = self.next_key();
        let Client::Campaign(client) = &mut self.client else {
            return Outcome::Error("order-without-campaign-client".into());
        };
        let at_once = self.ctx.orders_at_once;
        crate::mall::order(client, &self.ctx.tenant, (&item, member, order_id), at_once).await
    }

    async fn validate_and_redeem(&mut self) -> Outcome {
        let n = self.rng.random_range(0..self.ctx.members);
        let Some(code) = self
            .ctx
            .codes
            .get()
            .and_then(|c| c.get(n as usize))
            .cloned()
        else {
            return Outcome::Error("redeem-without-coupons".into());
        };
        let key = self.next_key();
        let member = imported_member_id(n);
        let price = self.rng.random_range(500..=20_000);
        let client = match &mut self.client {
            Client::Campaign(client) => client,
            Client::Rest(rest) => {
                let cart = serde_json::json!({"member_id": member, "store_id": "s01",
                    "lines": [{"line_id": "1", "sku": "TEA-1", "category": "food",
                        "quantity": 1, "unit_price": price}]});
                return rest.checkout(&self.ctx.tenant, cart, &code, &key).await;
            }
            _ => return Outcome::Error("redeem-without-campaign-client".into()),
        };
        let cart = Cart {
            member_id: member,
            store_id: "s01".into(),
            lines: vec![Line {
                line_id: "1".into(),
                sku: "TEA-1".into(),
                category: "food".into(),
                quantity: 1,
                unit_price: price,
            }],
            ..Cart::default()
        };
        let validate = ValidateCartRequest {
            tenant_id: self.ctx.tenant.clone(),
            cart: Some(cart.clone()),
            codes: vec![code.clone()],
        };
        if let Err(status) = client.validate_cart(validate).await {
            return classify(&status);
        }
        let redeem = CouponRedeemRequest {
            tenant_id: self.ctx.tenant.clone(),
            cart: Some(cart),
            codes: vec![code],
            order_id: format!("o-{key}"),
            redemption_id: key,
            hold_secs: 0,
        };
        match client.redeem(redeem).await {
            Ok(_) => Outcome::Ok,
            Err(status) => classify(&status),
        }
    }

    async fn redeem_and_capture(&mut self) -> Outcome {
        let wallet = self.random_wallet();
        let redeem_key = self.next_key();
        let capture_key = self.next_key();
        let points = self.rng.random_range(1..=5);
        let Client::Ledger(client) = &mut self.client else {
            return Outcome::Error("redeem-without-ledger-client".into());
        };
        let redeem = RedeemRequest {
            wallet: Some(wallet.clone()),
            reference: format!("r-{redeem_key}"),
            idempotency_key: redeem_key,
            points,
            capture: false,
        };
        let hold = match client.redeem(redeem).await {
            Ok(reply) => reply.into_inner().hold,
            Err(status) => return classify(&status),
        };
        let Some(hold) = hold else {
            return Outcome::Error("Redeem-returned-no-hold".into());
        };
        let capture = HoldActionRequest {
            wallet: Some(wallet),
            idempotency_key: capture_key,
            hold_id: hold.hold_id,
        };
        match client.capture_hold(capture).await {
            Ok(_) => Outcome::Ok,
            Err(status) => classify(&status),
        }
    }

    async fn echo(&mut self) -> Outcome {
        // Build and encode a real EarnRequest so the echo pays the same generation and
        // encoding cost and carries the same bytes as an Earn.
        let payload = self.earn_request().encode_to_vec();
        let Client::Echo(client) = &mut self.client else {
            return Outcome::Error("echo-without-echo-client".into());
        };
        match client.echo(EchoRequest { payload }).await {
            Ok(_) => Outcome::Ok,
            Err(status) => classify(&status),
        }
    }
}

/// INSUFFICIENT_POINTS and SOLD_OUT are expected business refusals; everything else is an error, keyed by
/// gRPC code and the platform's stable error code (never by message text).
pub fn classify(status: &tonic::Status) -> Outcome {
    let code = status
        .metadata()
        .get(CODE_METADATA_KEY)
        .and_then(|v| v.to_str().ok());
    let refusals = [ErrorCode::InsufficientPoints, ErrorCode::SoldOut];
    if refusals.iter().any(|r| code == Some(r.as_str())) {
        return Outcome::Rejected;
    }
    let kind = match code {
        Some(code) => format!("{:?}/{code}", status.code()),
        None => format!("{:?}", status.code()),
    };
    report_first(&kind, status.message());
    Outcome::Error(kind)
}

/// Prints the message of the first error of each kind, so a failing run says why.
pub(crate) fn report_first(kind: &str, message: &str) {
    static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if seen.insert(kind.to_string()) {
        eprintln!("loadgen: first {kind} error: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insufficient_points_is_a_rejection() {
        let mut status = tonic::Status::failed_precondition("not enough");
        status
            .metadata_mut()
            .insert(CODE_METADATA_KEY, "INSUFFICIENT_POINTS".parse().unwrap());
        assert!(matches!(classify(&status), Outcome::Rejected));
        let other = tonic::Status::unavailable("down");
        assert!(matches!(classify(&other), Outcome::Error(k) if k == "Unavailable"));
    }

    #[test]
    fn imported_ids_are_those_gen_members_writes() {
        // loadtest/gen-members.py: f"M{n:08d}".
        assert_eq!(imported_member_id(0), "M00000000");
        assert_eq!(imported_member_id(999_999), "M00999999");
    }

    #[tokio::test]
    async fn earn_requests_are_consistent_and_unique() {
        let ctx = Arc::new(RunContext {
            run_id: "r1".into(),
            tenant: "bench-r1".into(),
            members: 10,
            sale: String::new(),
            codes: std::sync::OnceLock::new(),
            items: Vec::new(),
            orders_at_once: false,
        });
        let channel = tonic::service::interceptor::InterceptedService::new(
            tonic::transport::Channel::from_static("http://127.0.0.1:1").connect_lazy(),
            crate::target::Credential::default(),
        );
        let mut w = Worker::new(ctx, "earn", 3, Kind::Earn, Link::Grpc(channel));
        let a = w.earn_request();
        let b = w.earn_request();
        assert_ne!(a.idempotency_key, b.idempotency_key);
        assert!(a.idempotency_key.starts_with("r1-earn-3-"));
        assert!((1..=3).contains(&a.lines.len()));
        assert_eq!(a.order_total, a.lines.iter().map(|l| l.amount).sum::<i64>());
        let size = a.encode_to_vec().len();
        assert!((60..400).contains(&size), "{size}");
    }
}
