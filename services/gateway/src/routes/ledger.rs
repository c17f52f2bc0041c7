//! Ledger routes: wallets, earning, redemption holds, reversals, adjustments, transfers,
//! stored value, balances, history and earning rules. Each maps to one `ledger.v1` call.

use crate::dto::*;
use crate::problem::{ApiError, IdempotencyKeyHeader, JsonBody, Problem, QueryParams};
use crate::routes::TenantPath;
use crate::state::AppState;
use async_trait::async_trait;
use axum::Json;
use axum::extract::{Path, State};
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_ledger::client::LedgerClient;
use loyalty_proto::ledger::v1 as pb;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Reply<T> = Result<Json<T>, ApiError>;

/// A member's wallet within a tenant.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WalletPath {
    /// The tenant (retail chain).
    tenant: String,
    /// The member's id in the tenant's systems.
    member: String,
}

impl WalletPath {
    fn wallet(&self) -> pb::WalletRef {
        pb::WalletRef {
            tenant_id: self.tenant.clone(),
            member_id: self.member.clone(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HoldPath {
    tenant: String,
    member: String,
    /// The hold returned by a redemption.
    hold_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 200; default 50.
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpiringQuery {
    /// Window in days; default: the tenant's `expiring_soon_days`.
    within_days: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RulesQuery {
    /// A stored version; omit for the current rules.
    version: Option<u64>,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_wallet))
        .routes(routes!(balance))
        .routes(routes!(history))
        .routes(routes!(expiring))
        .routes(routes!(earn))
        .routes(routes!(redeem))
        .routes(routes!(capture))
        .routes(routes!(void))
        .routes(routes!(reverse))
        .routes(routes!(adjust))
        .routes(routes!(top_up))
        .routes(routes!(spend))
        .routes(routes!(refund))
        .routes(routes!(transfer))
        .routes(routes!(get_rules, put_rules))
}

/// A write to one wallet: the body becomes the ledger's request for that wallet, under the
/// request's idempotency key.
#[async_trait]
trait WalletWrite: Send {
    async fn send(
        self,
        ledger: &dyn LedgerClient,
        wallet: pb::WalletRef,
        key: String,
    ) -> ServiceResult<pb::WriteResult>;
}

/// The route of a wallet write: `POST path` with `body` and an `Idempotency-Key`, answered
/// with the write's result (entries, balance, hold).
macro_rules! wallet_write {
    ($(#[doc = $doc:tt])* $name:ident, $path:tt, $tag:tt, $body:ident) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = $tag,
            params(WalletPath, ("Idempotency-Key" = String, Header)), request_body = $body,
            responses((status = 200, body = WriteResultDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
        async fn $name(
            State(s): State<AppState>,
            Path(p): Path<WalletPath>,
            IdempotencyKeyHeader(key): IdempotencyKeyHeader,
            JsonBody(body): JsonBody<$body>,
        ) -> Reply<WriteResultDto> {
            let written = body.send(s.ledger(), p.wallet(), key.into()).await?;
            Ok(Json(written.into()))
        }
    };
}

wallet_write! {
    /// Earns points for an order under the tenant's current rules.
    earn, "/v1/tenants/{tenant}/members/{member}/earnings", "ledger", EarnBody
}

wallet_write! {
    /// Holds points for a redemption; capture or void the hold, or it expires.
    redeem, "/v1/tenants/{tenant}/members/{member}/redemptions", "ledger", RedeemBody
}

wallet_write! {
    /// Reverses an earn or a captured redemption, fully or in part, never more than once in total.
    reverse, "/v1/tenants/{tenant}/members/{member}/reversals", "ledger", ReverseBody
}

wallet_write! {
    /// A manual adjustment with a mandatory reason.
    adjust, "/v1/tenants/{tenant}/members/{member}/adjustments", "ledger", AdjustBody
}

wallet_write! {
    /// Adds paid stored value, plus any bonus the rules grant.
    top_up, "/v1/tenants/{tenant}/members/{member}/stored-value/top-ups", "stored value", TopUpBody
}

wallet_write! {
    /// Spends stored value (paid value first, then bonus).
    spend, "/v1/tenants/{tenant}/members/{member}/stored-value/spends", "stored value", SpendBody
}

wallet_write! {
    /// Refunds a spend, in full or in part, never more than it took.
    refund, "/v1/tenants/{tenant}/members/{member}/stored-value/refunds", "stored value", RefundBody
}

#[async_trait]
impl WalletWrite for EarnBody {
    async fn send(
        self,
        ledger: &dyn LedgerClient,
        wallet: pb::WalletRef,
        key: String,
    ) -> ServiceResult<pb::WriteResult> {
        ledger.earn(self.into_proto(wallet, key)).await
    }
}

#[async_trait]
impl WalletWrite for RedeemBody {
    async fn send(
        self,
        ledger: &dyn LedgerClient,
        wallet: pb::WalletRef,
        key: String,
    ) -> ServiceResult<pb::WriteResult> {
        let request = pb::RedeemRequest {
            wallet: Some(wallet),
            idempotency_key: key,
            points: self.points,
            reference: self.reference,
            capture: self.capture,
        };
        ledger.redeem(request).await
    }
}

#[async_trait]
impl WalletWrite for ReverseBody {
    async fn send(
        self,
        ledger: &dyn LedgerClient,
        wallet: pb::WalletRef,
        key: String,
    ) -> ServiceResult<pb::WriteResult> {
        let points = match self.points {
            Some(0) => {
                return Err(ServiceError::invalid(
                    "points must be greater than zero; omit it to reverse all",
                ));
            }
            other => other.unwrap_or(0),
        };
        let request = pb::ReverseRequest {
            wallet: Some(wallet),
            idempotency_key: key,
            entry_id: self.entry_id,
            points,
            reason: self.reason,
        };
        ledger.reverse(request).await
    }
}

#[async_trait]
impl WalletWrite for AdjustBody {
    async fn send(
        self,
        ledger: &dyn LedgerClient,
        wallet: pb::WalletRef,
        key: String,
    ) -> ServiceResult<pb::WriteResult> {
        let request = pb::AdjustRequest {
            wallet: Some(wallet),
            idempotency_key: key,
            points: self.points,
            reason: self.reason,
        };
        ledger.adjust(request).await
    }
}

#[async_trait]
impl WalletWrite for TopUpBody {
    async fn send(
        self,
        ledger: &dyn LedgerClient,
        wallet: pb::WalletRef,
        key: String,
    ) -> ServiceResult<pb::WriteResult> {
        let request = pb::TopUpRequest {
            wallet: Some(wallet),
            idempotency_key: key,
            amount: self.amount,
        };
        ledger.top_up(request).await
    }
}

#[async_trait]
impl WalletWrite for SpendBody {
    async fn send(
        self,
        ledger: &dyn LedgerClient,
        wallet: pb::WalletRef,
        key: String,
    ) -> ServiceResult<pb::WriteResult> {
        let request = pb::SpendRequest {
            wallet: Some(wallet),
            idempotency_key: key,
            amount: self.amount,
            reference: self.reference,
        };
        ledger.spend(request).await
    }
}

#[async_trait]
impl WalletWrite for RefundBody {
    async fn send(
        self,
        ledger: &dyn LedgerClient,
        wallet: pb::WalletRef,
        key: String,
    ) -> ServiceResult<pb::WriteResult> {
        let amount = match self.amount {
            Some(0) => {
                return Err(ServiceError::invalid(
                    "amount must be greater than zero; omit it to refund all",
                ));
            }
            other => other.unwrap_or(0),
        };
        let request = pb::RefundRequest {
            wallet: Some(wallet),
            idempotency_key: key,
            spend_entry_id: self.spend_entry_id,
            amount,
        };
        ledger.refund(request).await
    }
}

/// Opens a member's wallet (idempotent: an open wallet is reported as it is).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/members/{member}/wallet", tag = "ledger",
    params(WalletPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = WriteResultDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn open_wallet(
    State(s): State<AppState>,
    Path(p): Path<WalletPath>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
) -> Reply<WriteResultDto> {
    let request = pb::OpenWalletRequest {
        wallet: Some(p.wallet()),
        idempotency_key: key.into(),
    };
    Ok(Json(s.ledger().open_wallet(request).await?.into()))
}

/// Balances: available, pending, held, expiring soon, stored value.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members/{member}/balance", tag = "ledger",
    params(WalletPath),
    responses((status = 200, body = BalanceDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn balance(State(s): State<AppState>, Path(p): Path<WalletPath>) -> Reply<BalanceDto> {
    Ok(Json(s.ledger().get_balance(p.wallet()).await?.into()))
}

/// Entries newest first, with cursor pagination.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members/{member}/history", tag = "ledger",
    params(WalletPath, HistoryQuery),
    responses((status = 200, body = HistoryDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn history(
    State(s): State<AppState>,
    Path(p): Path<WalletPath>,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> Reply<HistoryDto> {
    let request = pb::ListHistoryRequest {
        wallet: Some(p.wallet()),
        cursor: q.cursor.unwrap_or_default(),
        limit: q.limit.unwrap_or(0),
    };
    let page = s.ledger().list_history(request).await?;
    let next_cursor = (!page.next_cursor.is_empty()).then_some(page.next_cursor);
    Ok(Json(HistoryDto {
        entries: page.entries.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Points expiring soon, by date: what reminders and tills show.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members/{member}/expiring", tag = "ledger",
    params(WalletPath, ExpiringQuery),
    responses((status = 200, body = ExpiringDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn expiring(
    State(s): State<AppState>,
    Path(p): Path<WalletPath>,
    QueryParams(q): QueryParams<ExpiringQuery>,
) -> Reply<ExpiringDto> {
    let request = pb::ListExpiringRequest {
        wallet: Some(p.wallet()),
        within_days: q.within_days.unwrap_or(0),
    };
    Ok(Json(s.ledger().list_expiring(request).await?.into()))
}

/// The route of an action on a redemption's hold: `POST path` with an `Idempotency-Key` and
/// no body, answered with the write's result.
macro_rules! hold_action {
    ($(#[doc = $doc:tt])* $name:ident, $path:tt, $call:ident) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = "ledger",
            params(HoldPath, ("Idempotency-Key" = String, Header)),
            responses((status = 200, body = WriteResultDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
        async fn $name(
            State(s): State<AppState>,
            Path(p): Path<HoldPath>,
            IdempotencyKeyHeader(key): IdempotencyKeyHeader,
        ) -> Reply<WriteResultDto> {
            let request = pb::HoldActionRequest {
                wallet: Some(pb::WalletRef {
                    tenant_id: p.tenant,
                    member_id: p.member,
                }),
                idempotency_key: key.into(),
                hold_id: p.hold_id,
            };
            Ok(Json(s.ledger().$call(request).await?.into()))
        }
    };
}

hold_action! {
    /// Captures a hold: the points are spent.
    capture, "/v1/tenants/{tenant}/members/{member}/redemptions/{hold_id}/capture", capture_hold
}

hold_action! {
    /// Voids a hold: the points return with their original expiry dates.
    void, "/v1/tenants/{tenant}/members/{member}/redemptions/{hold_id}/void", void_hold
}

/// Moves points between two members of the tenant; completes or gives the points back.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/transfers", tag = "ledger",
    params(TenantPath, ("Idempotency-Key" = String, Header)), request_body = TransferBody,
    responses((status = 200, body = TransferDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn transfer(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<TransferBody>,
) -> Reply<TransferDto> {
    let request = pb::TransferRequest {
        tenant_id: p.tenant,
        from_member_id: body.from_member_id,
        to_member_id: body.to_member_id,
        idempotency_key: key.into(),
        points: body.points,
    };
    Ok(Json(s.ledger().transfer(request).await?.into()))
}

/// The tenant's current earning rules (or a stored version); the built-in default is version 0.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/earning-rules", tag = "rules",
    params(TenantPath, RulesQuery),
    responses((status = 200, body = RulesDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_rules(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    QueryParams(q): QueryParams<RulesQuery>,
) -> Reply<RulesDto> {
    let request = pb::GetRulesRequest {
        tenant_id: p.tenant,
        version: q.version.unwrap_or(0),
    };
    Ok(Json(s.ledger().get_rules(request).await?.into()))
}

/// Stores a new version of the tenant's earning rules.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/earning-rules", tag = "rules",
    params(TenantPath, ("Idempotency-Key" = String, Header)), request_body = RulesDto,
    responses((status = 200, body = RulesDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn put_rules(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<RulesDto>,
) -> Reply<RulesDto> {
    let expected_version = body.expected_version.unwrap_or(0);
    let request = pb::PutRulesRequest {
        tenant_id: p.tenant,
        idempotency_key: key.into(),
        rules: Some(body.into_proto()),
        expected_version,
    };
    Ok(Json(s.ledger().put_rules(request).await?.into()))
}
