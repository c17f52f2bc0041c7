//! The REST API's models: JSON shapes with OpenAPI schemas, kept apart from the gRPC and domain
//! types so each can change on its own. Times are RFC 3339 UTC; amounts are integers (points, or
//! minor currency units for stored value).

use chrono::{DateTime, Utc};
use loyalty_proto::ledger::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn time(ms: i64) -> Option<DateTime<Utc>> {
    (ms != 0)
        .then(|| DateTime::from_timestamp_millis(ms))
        .flatten()
}

fn ms(at: Option<DateTime<Utc>>) -> i64 {
    at.map_or(0, |t| t.timestamp_millis())
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineBody {
    #[serde(default)]
    pub sku: String,
    #[serde(default)]
    pub category: String,
    /// Net line amount in minor units.
    pub amount: i64,
}

/// A purchase to earn points on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EarnBody {
    pub order_id: String,
    /// Minor units; must equal the sum of `lines` when lines are given.
    pub order_total: i64,
    #[serde(default)]
    pub lines: Vec<OrderLineBody>,
    /// When the purchase happened; defaults to now.
    pub occurred_at: Option<DateTime<Utc>>,
}

impl EarnBody {
    pub fn into_proto(self, wallet: pb::WalletRef, key: String) -> pb::EarnRequest {
        pb::EarnRequest {
            wallet: Some(wallet),
            idempotency_key: key,
            order_id: self.order_id,
            order_total: self.order_total,
            lines: self
                .lines
                .into_iter()
                .map(|l| pb::OrderLine {
                    sku: l.sku,
                    category: l.category,
                    amount: l.amount,
                })
                .collect(),
            occurred_at_ms: ms(self.occurred_at),
            tier_multiplier_bp: 0,
        }
    }
}

/// Sets points aside for a redemption; capture or void the returned hold. With `capture`,
/// the points are taken at once instead (the hold made and captured in one write).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemBody {
    pub points: i64,
    #[serde(default)]
    pub reference: String,
    /// Take the points at once; a key used with the other value is an idempotency conflict.
    #[serde(default)]
    pub capture: bool,
}

/// Reverses an earn or a captured redemption, fully or in part.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseBody {
    pub entry_id: String,
    /// Omit to reverse all that is left.
    pub points: Option<i64>,
    #[serde(default)]
    pub reason: String,
}

/// A manual adjustment; the reason is mandatory and recorded.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustBody {
    /// Signed: positive credits, negative debits.
    pub points: i64,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    pub from_member_id: String,
    pub to_member_id: String,
    pub points: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpBody {
    /// Paid amount in minor units; bonus rules add to it.
    pub amount: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpendBody {
    pub amount: i64,
    #[serde(default)]
    pub reference: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    pub spend_entry_id: String,
    /// Omit to refund all that is left of the spend.
    pub amount: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeltasDto {
    pub points_available: i64,
    pub points_pending: i64,
    pub points_held: i64,
    pub stored_value: i64,
    pub bonus_value: i64,
}

/// One immutable ledger line.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryDto {
    pub entry_id: String,
    /// earned, pending_activated, held, captured, voided, hold_expired, reversed, adjusted,
    /// transferred_out, transferred_in, transfer_returned, expired, topped_up, spent, refunded,
    /// opened, low_balance, expiring_soon (notices with no deltas)
    pub kind: String,
    pub at: Option<DateTime<Utc>>,
    pub deltas: DeltasDto,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_entry_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterparty_member_id: Option<String>,
    /// The earning-rules version that produced this entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl From<pb::Entry> for EntryDto {
    fn from(e: pb::Entry) -> Self {
        let d = e.deltas.unwrap_or_default();
        // Earns always name their rules version, including 0 (the built-in default rules).
        let rules_version = (e.rules_version != 0 || e.kind == "earned").then_some(e.rules_version);
        Self {
            entry_id: e.entry_id,
            kind: e.kind,
            at: time(e.at_ms),
            deltas: DeltasDto {
                points_available: d.points_available,
                points_pending: d.points_pending,
                points_held: d.points_held,
                stored_value: d.stored_value,
                bonus_value: d.bonus_value,
            },
            order_id: non_empty(e.order_id),
            hold_id: non_empty(e.hold_id),
            target_entry_id: non_empty(e.target_entry_id),
            reason: non_empty(e.reason),
            counterparty_member_id: non_empty(e.counterparty_member_id),
            rules_version,
            reference: non_empty(e.reference),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceDto {
    pub tenant_id: String,
    pub member_id: String,
    pub points_available: i64,
    pub points_pending: i64,
    pub points_held: i64,
    pub expiring_soon_points: i64,
    pub expiring_soon_at: Option<DateTime<Utc>>,
    pub stored_value: i64,
    pub bonus_value: i64,
    pub low_balance: bool,
    pub version: u64,
}

impl From<pb::Balance> for BalanceDto {
    fn from(b: pb::Balance) -> Self {
        let w = b.wallet.unwrap_or_default();
        Self {
            tenant_id: w.tenant_id,
            member_id: w.member_id,
            points_available: b.points_available,
            points_pending: b.points_pending,
            points_held: b.points_held,
            expiring_soon_points: b.expiring_soon_points,
            expiring_soon_at: time(b.expiring_soon_at_ms),
            stored_value: b.stored_value,
            bonus_value: b.bonus_value,
            low_balance: b.low_balance,
            version: b.version,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldDto {
    pub hold_id: String,
    pub points: i64,
    pub expires_at: Option<DateTime<Utc>>,
    pub reference: String,
}

/// What every write returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct WriteResultDto {
    /// Entries this write committed, housekeeping (activations, expiries) first.
    pub entries: Vec<EntryDto>,
    pub balance: BalanceDto,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldDto>,
    /// True when this idempotency key had already been applied and the first result is returned.
    pub replayed: bool,
}

impl From<pb::WriteResult> for WriteResultDto {
    fn from(r: pb::WriteResult) -> Self {
        Self {
            entries: r.entries.into_iter().map(Into::into).collect(),
            balance: r.balance.unwrap_or_default().into(),
            hold: r.hold.map(|h| HoldDto {
                hold_id: h.hold_id,
                points: h.points,
                expires_at: time(h.expires_at_ms),
                reference: h.reference,
            }),
            replayed: r.replayed,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryDto {
    pub entries: Vec<EntryDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferDto {
    pub transfer_id: String,
    pub state: String,
    pub debit: Option<EntryDto>,
    pub credit: Option<EntryDto>,
    pub replayed: bool,
}

impl From<pb::TransferResult> for TransferDto {
    fn from(r: pb::TransferResult) -> Self {
        Self {
            transfer_id: r.transfer_id,
            state: r.state,
            debit: r.debit.map(Into::into),
            credit: r.credit.map(Into::into),
            replayed: r.replayed,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryMultiplierDto {
    pub category: String,
    /// Basis points: 10000 = 1x, 20000 = 2x.
    pub multiplier_bp: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromotionDto {
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub multiplier_bp: u32,
    /// Empty applies to every category.
    #[serde(default)]
    pub categories: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpBonusDto {
    pub min_paid: i64,
    pub bonus: i64,
}

/// When earned points expire.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExpiryDto {
    Never,
    RollingMonths { months: u32 },
    FixedYearly { month: u32, day: u32 },
}

/// A tenant's earning rules. Storing them creates a new version; entries record the version used.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesDto {
    #[serde(default, skip_deserializing)]
    pub version: u64,
    pub points_per_unit: i64,
    pub unit_minor: i64,
    #[serde(default)]
    pub categories: Vec<CategoryMultiplierDto>,
    #[serde(default)]
    pub promotions: Vec<PromotionDto>,
    #[serde(default)]
    pub per_order_cap: i64,
    #[serde(default)]
    pub per_day_cap: i64,
    #[serde(default)]
    pub lock_days: u32,
    pub expiry: ExpiryDto,
    pub hold_ttl_secs: u32,
    #[serde(default)]
    pub top_up_bonuses: Vec<TopUpBonusDto>,
    #[serde(default)]
    pub low_balance_threshold: i64,
    pub expiring_soon_days: u32,
    /// On writes: fail with VERSION_CONFLICT unless this is the current version.
    #[serde(default, skip_serializing)]
    pub expected_version: Option<u64>,
}

impl RulesDto {
    pub fn into_proto(self) -> pb::RuleSet {
        let policy = match self.expiry {
            ExpiryDto::Never => None,
            ExpiryDto::RollingMonths { months } => Some(pb::expiry::Policy::RollingMonths(months)),
            ExpiryDto::FixedYearly { month, day } => {
                Some(pb::expiry::Policy::FixedYearly(pb::FixedDate {
                    month,
                    day,
                }))
            }
        };
        pb::RuleSet {
            tenant_id: String::new(),
            version: 0,
            points_per_unit: self.points_per_unit,
            unit_minor: self.unit_minor,
            categories: self
                .categories
                .into_iter()
                .map(|c| pb::CategoryMultiplier {
                    category: c.category,
                    multiplier_bp: c.multiplier_bp,
                })
                .collect(),
            promotions: self
                .promotions
                .into_iter()
                .map(|p| pb::Promotion {
                    name: p.name,
                    starts_at_ms: p.starts_at.timestamp_millis(),
                    ends_at_ms: p.ends_at.timestamp_millis(),
                    multiplier_bp: p.multiplier_bp,
                    categories: p.categories,
                })
                .collect(),
            per_order_cap: self.per_order_cap,
            per_day_cap: self.per_day_cap,
            lock_days: self.lock_days,
            expiry: policy.map(|p| pb::Expiry { policy: Some(p) }),
            hold_ttl_secs: self.hold_ttl_secs,
            top_up_bonuses: self
                .top_up_bonuses
                .into_iter()
                .map(|b| pb::TopUpBonus {
                    min_paid: b.min_paid,
                    bonus: b.bonus,
                })
                .collect(),
            low_balance_threshold: self.low_balance_threshold,
            expiring_soon_days: self.expiring_soon_days,
        }
    }
}

impl From<pb::RuleSet> for RulesDto {
    fn from(r: pb::RuleSet) -> Self {
        let expiry = match r.expiry.and_then(|e| e.policy) {
            None => ExpiryDto::Never,
            Some(pb::expiry::Policy::RollingMonths(months)) => ExpiryDto::RollingMonths { months },
            Some(pb::expiry::Policy::FixedYearly(d)) => ExpiryDto::FixedYearly {
                month: d.month,
                day: d.day,
            },
        };
        Self {
            version: r.version,
            points_per_unit: r.points_per_unit,
            unit_minor: r.unit_minor,
            categories: r
                .categories
                .into_iter()
                .map(|c| CategoryMultiplierDto {
                    category: c.category,
                    multiplier_bp: c.multiplier_bp,
                })
                .collect(),
            promotions: r
                .promotions
                .into_iter()
                .map(|p| PromotionDto {
                    name: p.name,
                    starts_at: time(p.starts_at_ms).unwrap_or_default(),
                    ends_at: time(p.ends_at_ms).unwrap_or_default(),
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
                .map(|b| TopUpBonusDto {
                    min_paid: b.min_paid,
                    bonus: b.bonus,
                })
                .collect(),
            low_balance_threshold: r.low_balance_threshold,
            expiring_soon_days: r.expiring_soon_days,
            expected_version: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiringLotDto {
    pub expires_at: Option<DateTime<Utc>>,
    pub points: i64,
}

/// Points that expire within the asked window, earliest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiringDto {
    pub lots: Vec<ExpiringLotDto>,
    pub total_points: i64,
}

impl From<pb::ExpiringPoints> for ExpiringDto {
    fn from(e: pb::ExpiringPoints) -> Self {
        Self {
            lots: e
                .lots
                .into_iter()
                .map(|l| ExpiringLotDto {
                    expires_at: time(l.expires_at_ms),
                    points: l.points,
                })
                .collect(),
            total_points: e.total_points,
        }
    }
}
