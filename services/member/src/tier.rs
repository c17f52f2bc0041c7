//! Tiers (issue 5): per-tenant tier definitions and the rules that move a member between
//! them. Upgrades happen at once; a reached tier is kept for a period, reviewed at its end,
//! and lost only after a grace period; either kind of change may wait for a person's
//! approval.
//!
//! Everything here is pure: no store, no clock. `now` and the member's measure are
//! parameters, so a scheduled job, a REST call and a test under a controlled clock all get
//! the same answer. [`evaluate`], [`approve`] and [`reject`] take the state they were read
//! from and return the state that follows, so a decision cannot be applied to some other
//! state: the caller stores [`Evaluation::state`] (with the version it read, so a
//! concurrent writer is noticed) and copies its tier into `MemberFacts::tier`.
//!
//! The decisions where the issue was silent are recorded in
//! `docs/decisions/0009-tiers-and-rfm.md`.

use crate::facts::MemberFacts;
use chrono::Months;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::{ServiceError, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Basis points: 10,000 = 1x.
pub const ONE_X_BP: u32 = 10_000;
/// The largest earn multiplier a tier may give (10x).
pub const MAX_MULTIPLIER_BP: u32 = 10 * ONE_X_BP;
/// Tiers a policy may define.
pub const MAX_TIERS: usize = 20;
/// Transitions a member's state keeps, newest last.
pub const HISTORY_LIMIT: usize = 20;

const MAX_CODE_LEN: usize = 32;
const MAX_NAME_LEN: usize = 64;
const MAX_BENEFITS: usize = 50;
const MAX_BENEFIT_KEY_LEN: usize = 64;
const MAX_BENEFIT_VALUE_LEN: usize = 500;
const MAX_PERIOD_MONTHS: u32 = 120;
const MAX_GRACE_DAYS: u32 = 3650;

/// What a member's tier is measured by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Measure {
    /// Spend in the rolling 12 calendar months (`MemberFacts::spend_12m`), minor units.
    #[serde(rename = "spend_12m")]
    Spend12m,
    /// A points figure the caller takes from the ledger (a balance, or points earned in the
    /// last 12 months: the tenant's choice, made where the number is fetched).
    #[serde(rename = "points")]
    Points,
}

/// One tier of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierDef {
    /// Stable identifier, 1 to 32 of `a-z 0-9 _ -`; what states, facts and segments hold.
    pub code: String,
    /// Shown to people; may change without touching any member.
    pub name: String,
    /// The measure at or above which a member qualifies for this tier.
    pub threshold: i64,
    /// What the ledger's earning rules multiply points by for members of this tier.
    pub earn_multiplier_bp: u32,
    /// Everything else a tier gives (free shipping, lounge access...), as data for the
    /// services that honour it.
    #[serde(default)]
    pub benefits: BTreeMap<String, String>,
}

/// Which tier changes wait for a person's approval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    #[default]
    None,
    Upgrades,
    Downgrades,
    Both,
}

impl Approval {
    fn requires(self, kind: ChangeKind) -> bool {
        matches!(
            (self, kind),
            (Approval::Both, _)
                | (Approval::Upgrades, ChangeKind::Upgrade)
                | (Approval::Downgrades, ChangeKind::Downgrade)
        )
    }
}

/// A tenant's tiers and the rules for moving between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierPolicy {
    pub measure: Measure,
    /// Lowest first, thresholds strictly ascending. Below the first is "no tier".
    pub tiers: Vec<TierDef>,
    /// How long a reached tier is kept before it is reviewed (calendar months).
    pub period_months: u32,
    /// After a review finds the member below its tier, how long before the downgrade takes
    /// effect. 0: the review downgrades at once.
    pub grace_days: u32,
    #[serde(default)]
    pub approval: Approval,
}

impl TierPolicy {
    /// Checks a policy a tenant wants to store; the error names the first problem.
    pub fn validate(&self) -> ServiceResult<()> {
        if self.tiers.is_empty() {
            return Err(bad("a tier policy needs at least one tier"));
        }
        if self.tiers.len() > MAX_TIERS {
            return Err(bad(format!("a tier policy has at most {MAX_TIERS} tiers")));
        }
        for (i, tier) in self.tiers.iter().enumerate() {
            check_tier(tier)?;
            if self.tiers[..i].iter().any(|t| t.code == tier.code) {
                return Err(bad(format!("tier code {} appears twice", tier.code)));
            }
            if let Some(prev) = i.checked_sub(1).and_then(|p| self.tiers.get(p))
                && tier.threshold <= prev.threshold
            {
                return Err(bad(format!(
                    "tier thresholds must be strictly ascending: {} ({}) is not above {} ({})",
                    tier.code, tier.threshold, prev.code, prev.threshold
                )));
            }
        }
        if !(1..=MAX_PERIOD_MONTHS).contains(&self.period_months) {
            return Err(bad(format!(
                "period_months must be 1 to {MAX_PERIOD_MONTHS}"
            )));
        }
        if self.grace_days > MAX_GRACE_DAYS {
            return Err(bad(format!("grace_days must be at most {MAX_GRACE_DAYS}")));
        }
        Ok(())
    }

    /// The tier with this code, if the policy has one.
    pub fn tier(&self, code: &str) -> Option<&TierDef> {
        self.tiers.iter().find(|t| t.code == code)
    }

    /// The highest tier `measure` qualifies for; None below the first threshold.
    pub fn qualifying_tier(&self, measure: i64) -> Option<&TierDef> {
        qualifying_rank(self, measure).and_then(|r| self.tiers.get(r))
    }

    /// The measure of `facts` this policy looks at: rolling 12-month spend, or `points`
    /// (which only the ledger knows, so the caller passes it in).
    pub fn measure_of(&self, facts: &MemberFacts, points: i64, now: Timestamp) -> i64 {
        match self.measure {
            Measure::Spend12m => facts.spend_12m(now),
            Measure::Points => points,
        }
    }
}

fn bad(message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(message)
}

/// Whether `code` is 1 to 32 of `a-z 0-9 _ -`.
pub fn is_valid_code(code: &str) -> bool {
    (1..=MAX_CODE_LEN).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A code as an error may show it: a malformed one may be long or unprintable.
fn shown(code: &str) -> String {
    let short: String = code.chars().take(MAX_CODE_LEN + 8).collect();
    format!("{short:?}")
}

fn check_tier(tier: &TierDef) -> ServiceResult<()> {
    if !is_valid_code(&tier.code) {
        return Err(bad(format!(
            "tier code {} must be 1 to {MAX_CODE_LEN} of a-z 0-9 _ -",
            shown(&tier.code)
        )));
    }
    let code = &tier.code;
    if tier.name.trim().is_empty() || tier.name.chars().count() > MAX_NAME_LEN {
        return Err(bad(format!(
            "tier {code} needs a name of 1 to {MAX_NAME_LEN} characters"
        )));
    }
    if tier.threshold < 0 {
        return Err(bad(format!("tier {code}: threshold must not be negative")));
    }
    if tier.earn_multiplier_bp == 0 || tier.earn_multiplier_bp > MAX_MULTIPLIER_BP {
        return Err(bad(format!(
            "tier {code}: earn_multiplier_bp must be 1 to {MAX_MULTIPLIER_BP} ({ONE_X_BP} is 1x)"
        )));
    }
    if tier.benefits.len() > MAX_BENEFITS {
        return Err(bad(format!(
            "tier {code} has more than {MAX_BENEFITS} benefits"
        )));
    }
    for (key, value) in &tier.benefits {
        if key.trim().is_empty() || key.chars().count() > MAX_BENEFIT_KEY_LEN {
            return Err(bad(format!(
                "tier {code}: a benefit name must be 1 to {MAX_BENEFIT_KEY_LEN} characters"
            )));
        }
        if value.chars().count() > MAX_BENEFIT_VALUE_LEN {
            return Err(bad(format!(
                "tier {code}: a benefit value must be at most {MAX_BENEFIT_VALUE_LEN} characters"
            )));
        }
    }
    Ok(())
}

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Upgrade,
    Downgrade,
}

/// A tier change waiting for a person's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    /// The tier the member would move to; None = no tier.
    pub to: Option<String>,
    pub kind: ChangeKind,
    pub requested_at: Timestamp,
    /// The measure that called for the change, for the approver.
    pub measure: i64,
}

/// The last change an approver rejected, so it is not asked for again at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub to: Option<String>,
    pub kind: ChangeKind,
    pub at: Timestamp,
    /// Until then the same change (same kind, same target) is not requested again.
    pub until: Timestamp,
}

/// Why a member's tier changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The rules, applied to the measure.
    Measure,
    /// A person approved a pending change.
    Approval,
    /// The member's tier left the policy; it was placed by its measure.
    PolicyChange,
}

/// One change of tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub at: Timestamp,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cause: Cause,
    /// The measure the change was decided on.
    pub measure: i64,
}

/// A member's tier and where it stands in its period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierState {
    /// The tier code; None = no tier (below the first threshold).
    pub tier: Option<String>,
    /// When the member entered `tier`.
    pub since: Timestamp,
    /// The end of the current period, when the tier is reviewed; None without a tier.
    #[serde(default)]
    pub review_at: Option<Timestamp>,
    /// Set when a review found the member below its tier: the downgrade takes effect then.
    #[serde(default)]
    pub grace_until: Option<Timestamp>,
    /// A change awaiting approval.
    #[serde(default)]
    pub pending: Option<PendingChange>,
    /// The last rejected change.
    #[serde(default)]
    pub rejected: Option<Rejection>,
    /// The last [`HISTORY_LIMIT`] transitions, oldest first.
    #[serde(default)]
    pub history: Vec<Transition>,
}

impl TierState {
    /// A member without a tier, e.g. at registration.
    pub fn new(now: Timestamp) -> Self {
        Self {
            tier: None,
            since: now,
            review_at: None,
            grace_until: None,
            pending: None,
            rejected: None,
            history: Vec::new(),
        }
    }
}

/// What an evaluation, approval or rejection decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// The tier, its period and its grace stay as they were.
    Unchanged,
    /// Moved up (at once, or on approval); a new period started.
    Upgrade { from: Option<String>, to: String },
    /// A review found the member below its tier; it keeps the tier until `until`.
    GraceStarted { until: Timestamp },
    /// The member still qualifies for its tier at a review, or qualifies again during
    /// grace: grace cleared, a new period.
    Requalified,
    /// Moved down (grace over, or on approval) to the tier the measure qualifies for.
    Downgrade { from: String, to: Option<String> },
    /// A change waits for approval (recorded in the state's `pending`).
    AwaitingApproval { change: PendingChange },
    /// The pending change was rejected; the member keeps its tier.
    Rejected { change: PendingChange },
    /// The member's tier is no longer in the policy; it was placed by its measure at once.
    Reassigned { from: String, to: Option<String> },
}

/// A decision and the state that follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "the new state must be stored for the decision to take effect"]
pub struct Evaluation {
    pub decision: Decision,
    /// A change that was awaiting approval and no longer applies (the member's measure
    /// moved, or another change replaced it): approvers should drop it.
    pub withdrawn: Option<PendingChange>,
    /// The state to store.
    pub state: TierState,
}

impl Evaluation {
    /// True when the state is exactly the one evaluated: nothing to store or announce.
    pub fn is_unchanged(&self) -> bool {
        self.decision == Decision::Unchanged && self.withdrawn.is_none()
    }
}

/// The earn multiplier the ledger's rules apply for this member: its tier's, or 1x without
/// one (or with a tier the policy no longer has).
pub fn earn_multiplier_bp(policy: &TierPolicy, state: &TierState) -> u32 {
    state
        .tier
        .as_deref()
        .and_then(|code| policy.tier(code))
        .map_or(ONE_X_BP, |t| t.earn_multiplier_bp)
}

/// Position of `code` in the policy.
fn rank(policy: &TierPolicy, code: &str) -> Option<usize> {
    policy.tiers.iter().position(|t| t.code == code)
}

/// Position of the highest tier `measure` reaches. "Highest" is the last in policy order,
/// so even an unvalidated policy gives an answer rather than a panic.
fn qualifying_rank(policy: &TierPolicy, measure: i64) -> Option<usize> {
    policy.tiers.iter().rposition(|t| t.threshold <= measure)
}

fn code_at(policy: &TierPolicy, rank: Option<usize>) -> Option<String> {
    rank.and_then(|r| policy.tiers.get(r))
        .map(|t| t.code.clone())
}

/// `period_months` calendar months after `start` (chrono clamps the 31st to a shorter
/// month's end); the far future if that is beyond the calendar.
fn end_of_period(policy: &TierPolicy, start: Timestamp) -> Timestamp {
    start
        .to_datetime()
        .checked_add_months(Months::new(policy.period_months))
        .map(Timestamp::from_datetime)
        .filter(|end| *end >= start)
        .unwrap_or(Timestamp(i64::MAX))
}

/// The state after moving to `to`: a new period (none without a tier), no grace, nothing
/// pending, no rejection standing, and the transition in the history.
fn moved(
    policy: &TierPolicy,
    state: &TierState,
    to: Option<String>,
    cause: Cause,
    measure: i64,
    now: Timestamp,
) -> TierState {
    let mut history = state.history.clone();
    history.push(Transition {
        at: now,
        from: state.tier.clone(),
        to: to.clone(),
        cause,
        measure,
    });
    let excess = history.len().saturating_sub(HISTORY_LIMIT);
    history.drain(..excess);
    TierState {
        review_at: to.as_ref().map(|_| end_of_period(policy, now)),
        tier: to,
        since: now,
        grace_until: None,
        pending: None,
        rejected: None,
        history,
    }
}

/// What the period rules say about keeping the current tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Nothing due.
    Stay,
    /// Holds the tier at a review or during grace.
    Requalify,
    /// A review found the member below: grace until then.
    Grace(Timestamp),
    /// Grace over (or none): down to the qualifying tier.
    Drop,
}

/// The period rules for a member with a tier. `holds`: the measure still reaches it.
fn keep(policy: &TierPolicy, state: &TierState, holds: bool, now: Timestamp) -> Keep {
    if let Some(until) = state.grace_until {
        return if holds {
            Keep::Requalify
        } else if now >= until {
            Keep::Drop
        } else {
            Keep::Stay
        };
    }
    // A tier without a review date (a hand-made state) is due for review.
    let due = state.review_at.is_none_or(|at| now >= at);
    if !due {
        Keep::Stay
    } else if holds {
        Keep::Requalify
    } else if policy.grace_days == 0 {
        Keep::Drop
    } else {
        Keep::Grace(now.plus_days(i64::from(policy.grace_days)))
    }
}

/// The next period after a requalification: from the review date, so the member's
/// anniversary does not drift with when the job ran; from now if a whole period was missed.
fn renewed(policy: &TierPolicy, state: &TierState, now: Timestamp) -> Timestamp {
    state
        .review_at
        .map(|at| end_of_period(policy, at))
        .filter(|end| *end > now)
        .unwrap_or_else(|| end_of_period(policy, now))
}

/// What the rules say for a member whose measure is `measure` at `now`, and the state that
/// follows.
///
/// - Upgrade at once whenever the measure reaches a higher tier (jumping levels if it
///   reaches them); a new period starts.
/// - Before `review_at` a member never goes down. At the review: still qualifying renews
///   the period; below starts grace (`grace_days`).
/// - Qualifying again during grace clears it and renews the period; when grace is over the
///   member drops to the tier the measure qualifies for then (not one level at a time).
/// - A change the policy's [`Approval`] covers becomes `pending` instead. It is requested
///   once (no duplicate while it waits), replaced if the rules now call for a different
///   target, and withdrawn if they no longer call for a change. A rejected change is not
///   requested again until its rejection's `until`, unless the target differs.
/// - A tier the policy no longer has is replaced at once by the qualifying tier.
pub fn evaluate(
    policy: &TierPolicy,
    state: &TierState,
    measure: i64,
    now: Timestamp,
) -> Evaluation {
    let reached = qualifying_rank(policy, measure);
    let current = match state.tier.as_deref() {
        None => None,
        Some(code) => match rank(policy, code) {
            Some(r) => Some(r),
            None => return reassigned(policy, state, code, reached, measure, now),
        },
    };
    let keep = match current {
        Some(_) => keep(policy, state, reached >= current, now),
        None => Keep::Stay,
    };
    let wanted = if reached > current {
        Some(ChangeKind::Upgrade)
    } else if keep == Keep::Drop {
        Some(ChangeKind::Downgrade)
    } else {
        None
    };
    let to = code_at(policy, reached);

    if let Some(kind) = wanted
        && !policy.approval.requires(kind)
    {
        let next = moved(policy, state, to.clone(), Cause::Measure, measure, now);
        return Evaluation {
            decision: moved_decision(kind, state.tier.clone(), to),
            withdrawn: state.pending.clone(),
            state: next,
        };
    }

    let mut next = state.clone();
    match keep {
        Keep::Requalify => {
            next.grace_until = None;
            next.review_at = Some(renewed(policy, state, now));
            // The review a rejection waited for has come.
            next.rejected = None;
        }
        Keep::Grace(until) => next.grace_until = Some(until),
        Keep::Stay | Keep::Drop => {}
    }

    let mut withdrawn = None;
    let mut requested = None;
    match wanted {
        None => withdrawn = next.pending.take(),
        Some(kind) => {
            let waiting = next
                .pending
                .as_ref()
                .is_some_and(|p| p.kind == kind && p.to == to);
            if !waiting {
                withdrawn = next.pending.take();
                let refused = next
                    .rejected
                    .as_ref()
                    .is_some_and(|r| r.kind == kind && r.to == to && now < r.until);
                if !refused {
                    let change = PendingChange {
                        to,
                        kind,
                        requested_at: now,
                        measure,
                    };
                    next.pending = Some(change.clone());
                    requested = Some(change);
                }
            }
        }
    }

    let decision = match (requested, keep) {
        (Some(change), _) => Decision::AwaitingApproval { change },
        (None, Keep::Requalify) => Decision::Requalified,
        (None, Keep::Grace(until)) => Decision::GraceStarted { until },
        (None, Keep::Stay | Keep::Drop) => Decision::Unchanged,
    };
    Evaluation {
        decision,
        withdrawn,
        state: next,
    }
}

fn moved_decision(kind: ChangeKind, from: Option<String>, to: Option<String>) -> Decision {
    match (kind, from, to) {
        (ChangeKind::Upgrade, from, Some(to)) => Decision::Upgrade { from, to },
        (ChangeKind::Downgrade, Some(from), to) => Decision::Downgrade { from, to },
        // An upgrade to no tier, or a downgrade from none: not a move. Evaluate never asks
        // for one; approve refuses a pending change that says so.
        _ => Decision::Unchanged,
    }
}

/// The member's tier left the policy (the tenant removed or renamed it): nothing is left to
/// keep, so it is placed by its measure at once, without grace or approval.
fn reassigned(
    policy: &TierPolicy,
    state: &TierState,
    from: &str,
    reached: Option<usize>,
    measure: i64,
    now: Timestamp,
) -> Evaluation {
    let to = code_at(policy, reached);
    Evaluation {
        decision: Decision::Reassigned {
            from: from.to_string(),
            to: to.clone(),
        },
        withdrawn: state.pending.clone(),
        state: moved(policy, state, to, Cause::PolicyChange, measure, now),
    }
}

fn nothing_pending() -> ServiceError {
    ServiceError::new(
        ErrorCode::NoPendingTierChange,
        "no tier change awaits approval for this member",
    )
}

/// Applies the pending change as requested: the member moves and a new period starts.
/// Whether the change still applies is [`evaluate`]'s business (it withdraws stale ones);
/// the approver decides on what was requested.
pub fn approve(
    policy: &TierPolicy,
    state: &TierState,
    now: Timestamp,
) -> ServiceResult<Evaluation> {
    let change = state.pending.as_ref().ok_or_else(nothing_pending)?;
    if let Some(code) = change.to.as_deref()
        && policy.tier(code).is_none()
    {
        return Err(bad(format!(
            "tier {} is no longer in the policy; evaluate the member again",
            shown(code)
        )));
    }
    let decision = moved_decision(change.kind, state.tier.clone(), change.to.clone());
    if decision == Decision::Unchanged {
        return Err(bad("the pending change does not name a tier to move to"));
    }
    Ok(Evaluation {
        decision,
        withdrawn: None,
        state: moved(
            policy,
            state,
            change.to.clone(),
            Cause::Approval,
            change.measure,
            now,
        ),
    })
}

/// Drops the pending change; the member keeps its tier.
///
/// - A rejected downgrade keeps the tier for another full period: grace is cleared and the
///   next review is a period from now (the approver has decided the member stays).
/// - A rejected upgrade is not requested again until the member's next review (a period
///   from now for a member without a tier), unless the measure reaches a different tier.
pub fn reject(policy: &TierPolicy, state: &TierState, now: Timestamp) -> ServiceResult<Evaluation> {
    let change = state.pending.clone().ok_or_else(nothing_pending)?;
    // Keeping a tier the policy no longer has would strand the member in it.
    if let Some(code) = state.tier.as_deref()
        && policy.tier(code).is_none()
    {
        return Err(bad(format!(
            "the member's tier {} is no longer in the policy; evaluate the member again",
            shown(code)
        )));
    }
    let mut next = state.clone();
    next.pending = None;
    let until = match change.kind {
        ChangeKind::Downgrade => {
            next.grace_until = None;
            next.review_at = next.tier.as_ref().map(|_| end_of_period(policy, now));
            next.review_at
        }
        ChangeKind::Upgrade => state.review_at.filter(|at| *at > now),
    };
    next.rejected = Some(Rejection {
        to: change.to.clone(),
        kind: change.kind,
        at: now,
        until: until.unwrap_or_else(|| end_of_period(policy, now)),
    });
    Ok(Evaluation {
        decision: Decision::Rejected { change },
        withdrawn: None,
        state: next,
    })
}

#[cfg(test)]
mod tests;
