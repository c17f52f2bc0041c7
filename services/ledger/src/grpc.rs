//! The `ledger.v1` gRPC API: parses requests at the edge, calls the [`Ledger`], maps results.

use crate::command::Command;
use crate::grpc_access::{Access, Admitted};
use crate::model::{BalanceView, Deltas, Entry, WalletKey, WriteOutcome};
use crate::rules::{self, ExpiryPolicy, Order, OrderLine, RuleSet};
use crate::service::{Ledger, Written};
use crate::transfer::TransferOutcome;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{EntryId, HoldId, IdempotencyKey, MemberId, TenantId};
use loyalty_common::money::{non_negative, non_zero, positive};
use loyalty_common::{ServiceError, Timestamp};
use loyalty_proto::ledger::v1 as pb;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Longest free text (reasons, references, order ids) accepted.
const MAX_TEXT: usize = 500;
const MAX_LINES: usize = 1000;
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// The gRPC face of the ledger.
#[derive(Clone)]
pub struct LedgerGrpc {
    ledger: Arc<Ledger>,
    /// None: every caller is let in (a process without the identity service).
    access: Option<Access>,
}

/// The tenant a wallet reference names ("" if none: the check refuses it).
fn tenant_of(wallet: &Option<pb::WalletRef>) -> &str {
    wallet.as_ref().map_or("", |w| w.tenant_id.as_str())
}

/// The audit target of a wallet reference.
fn target_of(wallet: &Option<pb::WalletRef>) -> String {
    wallet.as_ref().map_or(String::new(), |w| {
        format!("member:{}/{}", w.tenant_id, w.member_id)
    })
}

impl LedgerGrpc {
    pub fn new(ledger: Arc<Ledger>) -> Self {
        Self {
            ledger,
            access: None,
        }
    }

    /// Checks every call against the identity service's callers and roles.
    pub fn with_access(mut self, access: Access) -> Self {
        self.access = Some(access);
        self
    }

    async fn admit<T>(
        &self,
        req: &Request<T>,
        method: &str,
        tenant: &str,
    ) -> Result<Option<Admitted>, Status> {
        match &self.access {
            Some(access) => access.admit(req, method, tenant).await.map(Some),
            None => Ok(None),
        }
    }

    async fn finish<R>(
        &self,
        admitted: Option<Admitted>,
        target: &str,
        result: Result<R, Status>,
    ) -> Result<R, Status> {
        match (&self.access, admitted) {
            (Some(access), Some(admitted)) => access.finish(admitted, target, result).await,
            _ => result,
        }
    }

    /// The tonic service, ready to mount.
    pub fn into_server(self) -> pb::ledger_service_server::LedgerServiceServer<Self> {
        pb::ledger_service_server::LedgerServiceServer::new(self)
    }

    async fn write(
        &self,
        wallet: Option<pb::WalletRef>,
        key: &str,
        command: ServiceResult<Command>,
    ) -> Result<Response<pb::WriteResult>, Status> {
        let wallet = wallet_key(wallet)?;
        let key = idempotency_key(key)?;
        let written = self.ledger.execute(&wallet, &key, command?).await?;
        Ok(Response::new(write_result(&wallet, written)))
    }
}

fn wallet_key(wallet: Option<pb::WalletRef>) -> ServiceResult<WalletKey> {
    let w = wallet.ok_or_else(|| ServiceError::invalid("wallet is required"))?;
    Ok(WalletKey {
        tenant: TenantId::parse(w.tenant_id)?,
        member: MemberId::parse(w.member_id)?,
    })
}

fn idempotency_key(key: &str) -> ServiceResult<IdempotencyKey> {
    if key.is_empty() {
        return Err(ServiceError::new(
            ErrorCode::IdempotencyKeyMissing,
            "idempotency_key is required on every write",
        ));
    }
    IdempotencyKey::parse(key)
}

fn text(field: &str, value: String, required: bool) -> ServiceResult<String> {
    if required && value.trim().is_empty() {
        return Err(ServiceError::invalid(format!("{field} is required")));
    }
    if value.len() > MAX_TEXT {
        return Err(ServiceError::invalid(format!(
            "{field} must be at most {MAX_TEXT} bytes"
        )));
    }
    Ok(value)
}

fn optional_amount(field: &str, value: i64) -> ServiceResult<Option<i64>> {
    Ok(if value == 0 {
        None
    } else {
        Some(positive(field, value)?)
    })
}

fn entry_id(field: &str, value: &str) -> ServiceResult<EntryId> {
    EntryId::parse(value)
        .map_err(|_| ServiceError::invalid(format!("{field} is not a valid entry id")))
}

fn earn_command(r: &pb::EarnRequest, now: Timestamp) -> ServiceResult<Command> {
    let order_id = text("order_id", r.order_id.clone(), true)?;
    let total = non_negative("order_total", r.order_total)?;
    if r.lines.len() > MAX_LINES {
        return Err(ServiceError::invalid(format!(
            "an order may have at most {MAX_LINES} lines"
        )));
    }
    let lines = r
        .lines
        .iter()
        .map(|l| {
            Ok(OrderLine {
                sku: text("sku", l.sku.clone(), false)?,
                category: text("category", l.category.clone(), false)?,
                amount: non_negative("line amount", l.amount)?,
            })
        })
        .collect::<ServiceResult<Vec<_>>>()?;
    if !lines.is_empty() && lines.iter().map(|l| l.amount).sum::<i64>() != total {
        return Err(ServiceError::invalid(
            "order_total must equal the sum of the line amounts",
        ));
    }
    let occurred_at = match r.occurred_at_ms {
        0 => None,
        ms if ms < 0 || ms > now.plus_days(1).0 => {
            return Err(ServiceError::invalid("occurred_at_ms must be a past time"));
        }
        ms => Some(Timestamp(ms)),
    };
    Ok(Command::Earn {
        order: Order {
            order_id,
            total,
            lines,
            occurred_at,
            tier_multiplier_bp: match r.tier_multiplier_bp {
                0 => None,
                bp if bp > crate::rules::MAX_TIER_MULTIPLIER_BP => {
                    return Err(ServiceError::invalid(
                        "tier_multiplier_bp must be at most 100000 (10x)",
                    ));
                }
                bp => Some(bp),
            },
        },
    })
}

#[tonic::async_trait]
impl pb::ledger_service_server::LedgerService for LedgerGrpc {
    async fn open_wallet(
        &self,
        req: Request<pb::OpenWalletRequest>,
    ) -> Result<Response<pb::WriteResult>, Status> {
        let admitted = self
            .admit(&req, "OpenWallet", tenant_of(&req.get_ref().wallet))
            .await?;
        let target = target_of(&req.get_ref().wallet);
        let r = req.into_inner();
        let result = self
            .write(r.wallet, &r.idempotency_key, Ok(Command::Open))
            .await;
        self.finish(admitted, &target, result).await
    }

    async fn earn(
        &self,
        req: Request<pb::EarnRequest>,
    ) -> Result<Response<pb::WriteResult>, Status> {
        let admitted = self
            .admit(&req, "Earn", tenant_of(&req.get_ref().wallet))
            .await?;
        let target = target_of(&req.get_ref().wallet);
        let r = req.into_inner();
        let command = earn_command(&r, self.ledger.now());
        let result = self.write(r.wallet, &r.idempotency_key, command).await;
        self.finish(admitted, &target, result).await
    }

    async fn redeem(
        &self,
        req: Request<pb::RedeemRequest>,
    ) -> Result<Response<pb::WriteResult>, Status> {
        let admitted = self
            .admit(&req, "Redeem", tenant_of(&req.get_ref().wallet))
            .await?;
        let target = target_of(&req.get_ref().wallet);
        let r = req.into_inner();
        let command = (|| {
            Ok(Command::Redeem {
                points: positive("points", r.points)?,
                reference: text("reference", r.reference.clone(), false)?,
            })
        })();
        let result = self.write(r.wallet, &r.idempotency_key, command).await;
        self.finish(admitted, &target, result).await
    }

    async fn capture_hold(
        &self,
        req: Request<pb::HoldActionRequest>,
    ) -> Result<Response<pb::WriteResult>, Status> {
        let admitted = self
            .admit(&req, "CaptureHold", tenant_of(&req.get_ref().wallet))
            .await?;
        let target = target_of(&req.get_ref().wallet);
        let r = req.into_inner();
        let command = HoldId::parse(&r.hold_id).map(|hold| Command::Capture { hold });
        let result = self.write(r.wallet, &r.idempotency_key, command).await;
        self.finish(admitted, &target, result).await
    }

    async fn void_hold(
        &self,
        req: Request<pb::HoldActionRequest>,
    ) -> Result<Response<pb::WriteResult>, Status> {
        let admitted = self
            .admit(&req, "VoidHold", tenant_of(&req.get_ref().wallet))
            .await?;
        let target = target_of(&req.get_ref().wallet);
        let r = req.into_inner();
        let command = HoldId::parse(&r.hold_id).map(|hold| Command::Void { hold });
        let result = self.write(r.wallet, &r.idempotency_key, command).await;
        self.finish(admitted, &target, result).await
    }

    async fn reverse(
        &self,
        req: Request<pb::ReverseRequest>,
    ) -> Result<Response<pb::WriteResult>, Status> {
        let admitted = self
            .admit(&req, "Reverse", tenant_of(&req.get_ref().wallet))
            .await?;
        let target = target_of(&req.get_ref().wallet);
        let r = req.into_inner();
        let command = (|| {
            Ok(Command::Reverse {
                entry: entry_id("entry_id", &r.entry_id)?,
                points: optional_amount("points", r.points)?,
                reason: text("reason", r.reason.clone(), false)?,
            })
        })();
        let result = self.write(r.wallet, &r.idempotency_key, command).await;
        self.finish(admitted, &target, result).await
    }

    async fn adjust(
        &self,
        req: Request<pb::AdjustRequest>,
    ) -> Result<Response<pb::WriteResult>, Status> {
        let admitted = self
            .admit(&req, "Adjust", tenant_of(&req.get_ref().wallet))
            .await?;
        let target = target_of(&req.get_ref().wallet);
        let r = req.into_inner();
        let command = (|| {
            Ok(Command::Adjust {
                points: non_zero("points", r.points)?,
                reason: text("reason", r.reason.clone(), true)?,
            })
        })();
        let result = self.write(r.wallet, &r.idempotency_key, command).await;
        self.finish(admitted, &target, result).await
    }

    async fn transfer(
        &self,
        req: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::TransferResult>, Status> {
        let admitted = self
            .admit(&req, "Transfer", &req.get_ref().tenant_id)
            .await?;
        let r = req.into_inner();
        let target = format!("member:{}/{}", r.tenant_id, r.from_member_id);
        let result = async {
            let tenant = TenantId::parse(r.tenant_id)?;
            let from = MemberId::parse(r.from_member_id)?;
            let to = MemberId::parse(r.to_member_id)?;
            let key = idempotency_key(&r.idempotency_key)?;
            let points = positive("points", r.points)?;
            let outcome = self
                .ledger
                .transfer(&tenant, &from, &to, &key, points)
                .await?;
            Ok(Response::new(transfer_result(outcome)))
        }
        .await;
        self.finish(admitted, &target, result).await
    }

    async fn top_up(
        &self,
        req: Request<pb::TopUpRequest>,
    ) -> Result<Response<pb::WriteResult>, Status> {
        let admitted = self
            .admit(&req, "TopUp", tenant_of(&req.get_ref().wallet))
            .await?;
        let target = target_of(&req.get_ref().wallet);
        let r = req.into_inner();
        let command = positive("amount", r.amount).map(|amount| Command::TopUp { amount });
        let result = self.write(r.wallet, &r.idempotency_key, command).await;
        self.finish(admitted, &target, result).await
    }

    async fn spend(
        &self,
        req: Request<pb::SpendRequest>,
    ) -> Result<Response<pb::WriteResult>, Status> {
        let admitted = self
            .admit(&req, "Spend", tenant_of(&req.get_ref().wallet))
            .await?;
        let target = target_of(&req.get_ref().wallet);
        let r = req.into_inner();
        let command = (|| {
            Ok(Command::Spend {
                amount: positive("amount", r.amount)?,
                reference: text("reference", r.reference.clone(), false)?,
            })
        })();
        let result = self.write(r.wallet, &r.idempotency_key, command).await;
        self.finish(admitted, &target, result).await
    }

    async fn refund(
        &self,
        req: Request<pb::RefundRequest>,
    ) -> Result<Response<pb::WriteResult>, Status> {
        let admitted = self
            .admit(&req, "Refund", tenant_of(&req.get_ref().wallet))
            .await?;
        let target = target_of(&req.get_ref().wallet);
        let r = req.into_inner();
        let command = (|| {
            Ok(Command::Refund {
                spend: entry_id("spend_entry_id", &r.spend_entry_id)?,
                amount: optional_amount("amount", r.amount)?,
            })
        })();
        let result = self.write(r.wallet, &r.idempotency_key, command).await;
        self.finish(admitted, &target, result).await
    }

    async fn get_balance(
        &self,
        req: Request<pb::WalletRef>,
    ) -> Result<Response<pb::Balance>, Status> {
        self.admit(&req, "GetBalance", &req.get_ref().tenant_id)
            .await?;
        let wallet = wallet_key(Some(req.into_inner()))?;
        let view = self.ledger.balance(&wallet).await?;
        Ok(Response::new(balance(&wallet, &view)))
    }

    async fn list_history(
        &self,
        req: Request<pb::ListHistoryRequest>,
    ) -> Result<Response<pb::HistoryPage>, Status> {
        self.admit(&req, "ListHistory", tenant_of(&req.get_ref().wallet))
            .await?;
        let r = req.into_inner();
        let wallet = wallet_key(r.wallet)?;
        let before = match r.cursor.as_str() {
            "" => None,
            c => Some(entry_id("cursor", c)?),
        };
        let limit = match r.limit {
            0 => DEFAULT_PAGE,
            l if l > MAX_PAGE => {
                return Err(
                    ServiceError::invalid(format!("limit must be at most {MAX_PAGE}")).into(),
                );
            }
            l => l,
        };
        let (entries, next) = self.ledger.history(&wallet, before, limit as usize).await?;
        Ok(Response::new(pb::HistoryPage {
            entries: entries.iter().map(entry).collect(),
            next_cursor: next.map(|c| c.to_string()).unwrap_or_default(),
        }))
    }

    async fn list_expiring(
        &self,
        req: Request<pb::ListExpiringRequest>,
    ) -> Result<Response<pb::ExpiringPoints>, Status> {
        self.admit(&req, "ListExpiring", tenant_of(&req.get_ref().wallet))
            .await?;
        let r = req.into_inner();
        let wallet = wallet_key(r.wallet)?;
        if r.within_days > 3650 {
            return Err(ServiceError::invalid("within_days must be at most 3650").into());
        }
        let within = (r.within_days != 0).then_some(r.within_days);
        let lots = self.ledger.expiring(&wallet, within).await?;
        Ok(Response::new(pb::ExpiringPoints {
            total_points: lots.iter().map(|l| l.points).sum(),
            lots: lots
                .iter()
                .map(|l| pb::ExpiringLot {
                    expires_at_ms: l.expires_at.map_or(0, |t| t.0),
                    points: l.points,
                })
                .collect(),
        }))
    }

    async fn put_rules(
        &self,
        req: Request<pb::PutRulesRequest>,
    ) -> Result<Response<pb::RuleSet>, Status> {
        let admitted = self
            .admit(&req, "PutRules", &req.get_ref().tenant_id)
            .await?;
        let target = format!("rules:{}", req.get_ref().tenant_id);
        let result = self.put_rules_inner(req.into_inner()).await;
        self.finish(admitted, &target, result).await
    }

    async fn get_rules(
        &self,
        req: Request<pb::GetRulesRequest>,
    ) -> Result<Response<pb::RuleSet>, Status> {
        self.admit(&req, "GetRules", &req.get_ref().tenant_id)
            .await?;
        let r = req.into_inner();
        let tenant = TenantId::parse(r.tenant_id)?;
        let rules = self.ledger.get_rules(&tenant, r.version).await?;
        Ok(Response::new(rules_to_proto(&tenant, &rules)))
    }
}

impl LedgerGrpc {
    async fn put_rules_inner(
        &self,
        r: pb::PutRulesRequest,
    ) -> Result<Response<pb::RuleSet>, Status> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let key = idempotency_key(&r.idempotency_key)?;
        let rules = rules_from_proto(
            r.rules
                .ok_or_else(|| ServiceError::invalid("rules are required"))?,
        )?;
        let expected = (r.expected_version != 0).then_some(r.expected_version);
        let (stored, _) = self
            .ledger
            .put_rules(&tenant, &key, rules, expected)
            .await?;
        Ok(Response::new(rules_to_proto(&tenant, &stored)))
    }
}

fn opt(value: &Option<impl ToString>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn deltas(d: &Deltas) -> pb::Deltas {
    pb::Deltas {
        points_available: d.points_available,
        points_pending: d.points_pending,
        points_held: d.points_held,
        stored_value: d.stored_value,
        bonus_value: d.bonus_value,
    }
}

pub fn entry(e: &Entry) -> pb::Entry {
    pb::Entry {
        entry_id: e.id.to_string(),
        kind: e.kind.as_str().into(),
        at_ms: e.at.0,
        deltas: Some(deltas(&e.deltas)),
        idempotency_key: e
            .idempotency_key
            .as_ref()
            .map(|k| k.as_str().to_string())
            .unwrap_or_default(),
        order_id: opt(&e.order_id),
        hold_id: opt(&e.hold_id),
        target_entry_id: opt(&e.target),
        reason: opt(&e.reason),
        counterparty_member_id: opt(&e.counterparty),
        rules_version: e.rules_version.unwrap_or(0),
        reference: opt(&e.reference),
    }
}

pub fn balance(wallet: &WalletKey, b: &BalanceView) -> pb::Balance {
    pb::Balance {
        wallet: Some(pb::WalletRef {
            tenant_id: wallet.tenant.to_string(),
            member_id: wallet.member.to_string(),
        }),
        points_available: b.points_available,
        points_pending: b.points_pending,
        points_held: b.points_held,
        expiring_soon_points: b.expiring_soon_points,
        expiring_soon_at_ms: b.expiring_soon_at.map_or(0, |t| t.0),
        stored_value: b.stored_value,
        bonus_value: b.bonus_value,
        low_balance: b.low_balance,
        version: b.version,
    }
}

fn write_result(wallet: &WalletKey, written: Written) -> pb::WriteResult {
    let WriteOutcome {
        entries,
        balance: view,
        hold,
    } = written.outcome;
    pb::WriteResult {
        entries: entries.iter().map(entry).collect(),
        balance: Some(balance(wallet, &view)),
        hold: hold.map(|h| pb::Hold {
            hold_id: h.hold_id.to_string(),
            points: h.points,
            expires_at_ms: h.expires_at.0,
            reference: h.reference,
        }),
        replayed: written.replayed,
    }
}

fn transfer_result(outcome: TransferOutcome) -> pb::TransferResult {
    let r = outcome.record;
    pb::TransferResult {
        transfer_id: r.transfer_id,
        state: r.state.as_str().into(),
        debit: r.debit.as_ref().map(entry),
        credit: r.credit.as_ref().map(entry),
        replayed: outcome.replayed,
    }
}

pub fn rules_from_proto(r: pb::RuleSet) -> ServiceResult<RuleSet> {
    let expiry = match r.expiry.and_then(|e| e.policy) {
        None => ExpiryPolicy::Never,
        Some(pb::expiry::Policy::RollingMonths(months)) => ExpiryPolicy::RollingMonths { months },
        Some(pb::expiry::Policy::FixedYearly(d)) => ExpiryPolicy::FixedYearly {
            month: d.month,
            day: d.day,
        },
    };
    let rules = RuleSet {
        version: 0,
        points_per_unit: r.points_per_unit,
        unit_minor: r.unit_minor,
        categories: r
            .categories
            .into_iter()
            .map(|c| rules::CategoryMultiplier {
                category: c.category,
                multiplier_bp: c.multiplier_bp,
            })
            .collect(),
        promotions: r
            .promotions
            .into_iter()
            .map(|p| rules::Promotion {
                name: p.name,
                starts_at: Timestamp(p.starts_at_ms),
                ends_at: Timestamp(p.ends_at_ms),
                multiplier_bp: p.multiplier_bp,
                categories: p.categories,
            })
            .collect(),
        per_order_cap: r.per_order_cap,
        per_day_cap: r.per_day_cap,
        lock_days: r.lock_days,
        expiry,
        hold_ttl_secs: r.hold_ttl_secs,
        top_up_bonuses: r
            .top_up_bonuses
            .into_iter()
            .map(|b| rules::TopUpBonus {
                min_paid: b.min_paid,
                bonus: b.bonus,
            })
            .collect(),
        low_balance_threshold: r.low_balance_threshold,
        expiring_soon_days: r.expiring_soon_days,
    };
    rules.validate()?;
    Ok(rules)
}

pub fn rules_to_proto(tenant: &TenantId, r: &RuleSet) -> pb::RuleSet {
    let policy = match r.expiry {
        ExpiryPolicy::Never => None,
        ExpiryPolicy::RollingMonths { months } => Some(pb::expiry::Policy::RollingMonths(months)),
        ExpiryPolicy::FixedYearly { month, day } => {
            Some(pb::expiry::Policy::FixedYearly(pb::FixedDate {
                month,
                day,
            }))
        }
    };
    pb::RuleSet {
        tenant_id: tenant.to_string(),
        version: r.version,
        points_per_unit: r.points_per_unit,
        unit_minor: r.unit_minor,
        categories: r
            .categories
            .iter()
            .map(|c| pb::CategoryMultiplier {
                category: c.category.clone(),
                multiplier_bp: c.multiplier_bp,
            })
            .collect(),
        promotions: r
            .promotions
            .iter()
            .map(|p| pb::Promotion {
                name: p.name.clone(),
                starts_at_ms: p.starts_at.0,
                ends_at_ms: p.ends_at.0,
                multiplier_bp: p.multiplier_bp,
                categories: p.categories.clone(),
            })
            .collect(),
        per_order_cap: r.per_order_cap,
        per_day_cap: r.per_day_cap,
        lock_days: r.lock_days,
        expiry: policy.map(|p| pb::Expiry { policy: Some(p) }),
        hold_ttl_secs: r.hold_ttl_secs,
        top_up_bonuses: r
            .top_up_bonuses
            .iter()
            .map(|b| pb::TopUpBonus {
                min_paid: b.min_paid,
                bonus: b.bonus,
            })
            .collect(),
        low_balance_threshold: r.low_balance_threshold,
        expiring_soon_days: r.expiring_soon_days,
    }
}
