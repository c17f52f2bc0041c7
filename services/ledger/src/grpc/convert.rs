//! The one mapping between the `ledger.v1` messages and the ledger's domain: requests are
//! parsed and checked here (whichever client sent them), results are mapped back.

use crate::command::Command;
use crate::model::{BalanceView, Deltas, Entry, WalletKey, WriteOutcome};
use crate::rules::{self, ExpiryPolicy, Order, OrderLine, RuleSet};
use crate::service::Written;
use crate::transfer::TransferOutcome;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{EntryId, IdempotencyKey, MemberId, TenantId};
use loyalty_common::money::{non_negative, positive};
use loyalty_common::{ServiceError, Timestamp};
use loyalty_proto::ledger::v1 as pb;

/// Longest free text (reasons, references, order ids) accepted.
const MAX_TEXT: usize = 500;
const MAX_LINES: usize = 1000;
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

pub fn wallet_key(wallet: Option<pb::WalletRef>) -> ServiceResult<WalletKey> {
    let w = wallet.ok_or_else(|| ServiceError::invalid("wallet is required"))?;
    Ok(WalletKey {
        tenant: TenantId::parse(w.tenant_id)?,
        member: MemberId::parse(w.member_id)?,
    })
}

pub fn idempotency_key(key: &str) -> ServiceResult<IdempotencyKey> {
    if key.is_empty() {
        return Err(ServiceError::new(
            ErrorCode::IdempotencyKeyMissing,
            "idempotency_key is required on every write",
        ));
    }
    IdempotencyKey::parse(key)
}

pub fn text(field: &str, value: String, required: bool) -> ServiceResult<String> {
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

pub fn optional_amount(field: &str, value: i64) -> ServiceResult<Option<i64>> {
    Ok(if value == 0 {
        None
    } else {
        Some(positive(field, value)?)
    })
}

pub fn entry_id(field: &str, value: &str) -> ServiceResult<EntryId> {
    EntryId::parse(value)
        .map_err(|_| ServiceError::invalid(format!("{field} is not a valid entry id")))
}

pub fn earn_command(r: &pb::EarnRequest, now: Timestamp) -> ServiceResult<Command> {
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

pub fn write_result(wallet: &WalletKey, written: Written) -> pb::WriteResult {
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

pub fn transfer_result(outcome: TransferOutcome) -> pb::TransferResult {
    let r = outcome.record;
    pb::TransferResult {
        transfer_id: r.transfer_id,
        state: r.state.as_str().into(),
        debit: r.debit.as_ref().map(entry),
        credit: r.credit.as_ref().map(entry),
        replayed: outcome.replayed,
        failure: r.failure.unwrap_or_default(),
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
