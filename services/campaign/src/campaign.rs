//! Campaigns: head office's plans to reward an audience (a segment, tiers, tags, or everyone)
//! between two local times, with a budget that is never overspent, a cap per member, and
//! variants against a holdout group. A campaign is written as a draft, submitted, and
//! approved or rejected by another staff member (maker-checker); once approved it is
//! scheduled, runs between its start and end, can be paused and resumed, and ends.
//!
//! Each reward to a member is a grant: it reserves its units of the budget and its place
//! under the member's cap in one write, then is confirmed when the reward was paid (a coupon
//! issued, points adjusted) or released when it could not be. `schedule` turns local times
//! into instants; `variant` assigns members to arms.

pub mod grant;
pub mod lifecycle;
pub mod results;
pub mod schedule;
pub mod variant;

use crate::template::{check_name, invalid};
use loyalty_common::error::ServiceResult;
use serde::{Deserialize, Serialize};

pub use lifecycle::{CampaignRecord, Status, Step};
pub use schedule::Schedule;

/// Most variants in a campaign (the holdout besides).
const MAX_VARIANTS: usize = 8;
/// Most points one grant pays.
const MAX_POINTS: i64 = 1_000_000;
/// Most bonus stored value one grant gives (minor units: 100,000.00).
const MAX_STORED_VALUE: i64 = 10_000_000;
/// The largest budget, in its units.
const MAX_BUDGET: u64 = 1_000_000_000_000;
/// Days after a reward in which a member's orders are the campaign's, unless it says.
pub const ATTRIBUTION_DAYS: u32 = 30;
/// Most tiers or tags in an audience.
const MAX_AUDIENCE_VALUES: usize = 64;

/// Who a campaign is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Audience {
    Everyone,
    /// The members of a segment of the member service.
    Segment {
        segment: String,
    },
    /// Members holding one of these tiers.
    Tiers {
        tiers: Vec<String>,
    },
    /// Members carrying one of these tags.
    Tags {
        tags: Vec<String>,
    },
}

/// What a grant gives a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Reward {
    /// A coupon of a template, issued to the member.
    Coupon { template: String },
    /// Points adjusted into the member's wallet through the ledger.
    Points { points: i64 },
    /// Bonus stored value (minor units) given into the member's wallet through the ledger.
    StoredValue { amount: i64 },
}

/// One arm of a campaign: its share of the members outside the holdout, and its reward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub id: String,
    /// Relative to the other variants' weights.
    pub weight: u32,
    pub reward: Reward,
}

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetUnit {
    Points,
    Coupons,
    /// Minor units of bonus stored value.
    StoredValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub unit: BudgetUnit,
    pub limit: u64,
}

/// How often one member may be rewarded: `times` per `per_days` local days, or over the
/// whole campaign without `per_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrequencyCap {
    pub times: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_days: Option<u32>,
}

/// A campaign as head office writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub audience: Audience,
    pub variants: Vec<Variant>,
    /// Members kept out of every variant, to measure against: 0 to 50 percent.
    #[serde(default)]
    pub holdout_percent: u32,
    pub schedule: Schedule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_cap: Option<FrequencyCap>,
    /// What rewards a member by itself while the campaign runs; none: a broadcast, or a
    /// partner's calls, do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// What else a reward does besides paying.
    #[serde(default)]
    pub actions: Actions,
    /// Days after a reward (or after being held out) in which a member's orders are
    /// attributed to the campaign, 1 to 365 (30 if left out); an order with one of its
    /// coupons is attributed whenever it comes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution_days: Option<u32>,
}

/// What a reward does besides paying its coupon or points.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actions {
    /// A tag added to the member (e.g. `welcomed`), through the member service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// A notification asked of a partner's SMS, WeChat or app-push system, by an event
    /// (`campaign_notification_requested`): the platform sends no messages itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    /// The partner's message template, by its name there.
    pub template: String,
    /// `sms`, `wechat`, `app` or `email`, in the order to try.
    pub channels: Vec<String>,
}

/// An event of the platform that rewards its member from a running campaign, once per member
/// and what the trigger counts (see `service::triggers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Trigger {
    /// A member registered: once per member.
    Welcome,
    /// A member's first order: once per member.
    FirstPurchase,
    /// An order of at least `amount` (minor units): once per order.
    OrderAtLeast { amount: i64 },
    /// The ledger warned that points will expire soon: once per warning.
    PointsExpiring,
    /// Stored value fell below the tenant's low-balance threshold: once per fall.
    LowStoredValue,
    /// The member moved up to a tier (to one of `tiers`, or any when empty): once per member
    /// and tier reached.
    TierUpgrade {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tiers: Vec<String>,
    },
    /// A referee's first order of at least `min_order` (minor units) rewards the referee
    /// with `referee_points` and its referrer with the campaign's variant (points), the
    /// referrer at most `max_per_referrer` times; a refund of that order within
    /// `returns_days` takes both back. Referrals are recorded by the API at sign-up.
    Referral {
        referee_points: i64,
        #[serde(default = "one_minor_unit")]
        min_order: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_per_referrer: Option<u32>,
        #[serde(default = "thirty_days")]
        returns_days: u32,
    },
    /// A member's daily check-in (asked for by the member's app): once per local day in the
    /// campaign's time zone, the variant's points, plus `streak_bonuses` on the days a streak
    /// of consecutive days reaches (with `cycle_days`, a streak's position restarts after that
    /// many days, so a weekly bonus repeats). A missed day restarts the streak.
    CheckIn {
        #[serde(default)]
        streak_bonuses: Vec<StreakBonus>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cycle_days: Option<u32>,
    },
    /// The scoring run found the member dormant: no order for the tenant's
    /// `lifecycle.dormant_days` (the member service's scoring policy, 365 by default). Once
    /// per spell: a member who orders again and lapses again is rewarded again.
    Dormant,
    /// The member's birthday, `days_before` it (0 to 30) in the campaign's time zone: once
    /// per member and year. Members born on 29 February are greeted on 28 February in
    /// common years.
    Birthday {
        #[serde(default)]
        days_before: u32,
    },
}

/// Points added on the day a check-in streak reaches `day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreakBonus {
    pub day: u32,
    pub points: i64,
}

/// The arm of a check-in that earns a streak bonus: `streak-<position>`.
pub const STREAK_ARM: &str = "streak-";

fn one_minor_unit() -> i64 {
    1
}

fn thirty_days() -> u32 {
    30
}

/// The arm of a referral's referee, whose reward the trigger names.
pub const REFEREE: &str = "referee";

impl Campaign {
    /// The reward of arm `arm`: a variant's, the referee's of a referral campaign, or a
    /// check-in's with its streak bonus.
    pub fn reward_of(&self, arm: &str) -> Option<Reward> {
        if let (REFEREE, Some(Trigger::Referral { referee_points, .. })) = (arm, &self.trigger) {
            return Some(Reward::Points {
                points: *referee_points,
            });
        }
        if let (Some(position), Some(Trigger::CheckIn { streak_bonuses, .. })) =
            (arm.strip_prefix(STREAK_ARM), &self.trigger)
        {
            let position: u32 = position.parse().ok()?;
            let bonus = streak_bonuses.iter().find(|b| b.day == position)?.points;
            return match self.variants.first()?.reward {
                Reward::Points { points } => Some(Reward::Points {
                    points: points + bonus,
                }),
                _ => None,
            };
        }
        self.variants
            .iter()
            .find(|v| v.id == arm)
            .map(|v| v.reward.clone())
    }

    /// The arm a check-in on the `streak`-th consecutive day pays in: its bonus day's, or the
    /// campaign's variant on a day without a bonus.
    pub fn check_in_arm(&self, streak: u32) -> String {
        let Some(Trigger::CheckIn {
            streak_bonuses,
            cycle_days,
        }) = &self.trigger
        else {
            return String::new();
        };
        let position = match cycle_days {
            Some(cycle) if *cycle > 0 => (streak - 1) % cycle + 1,
            _ => streak,
        };
        match streak_bonuses.iter().any(|b| b.day == position) {
            true => format!("{STREAK_ARM}{position}"),
            false => self
                .variants
                .first()
                .map(|v| v.id.clone())
                .unwrap_or_default(),
        }
    }

    /// Refuses a check-in campaign that cannot run: one variant paying the day's points, no
    /// holdout, bonuses on distinct days within the cycle.
    fn check_check_in(&self) -> ServiceResult<()> {
        let Some(Trigger::CheckIn {
            streak_bonuses,
            cycle_days,
        }) = &self.trigger
        else {
            return Ok(());
        };
        if self.variants.len() != 1 || !matches!(self.variants[0].reward, Reward::Points { .. }) {
            return Err(invalid(
                "variants",
                "a check-in campaign has one variant, paying the day's points",
            ));
        }
        if self.variants[0].id.starts_with(STREAK_ARM) {
            return Err(invalid(
                "variants[0].id",
                "`streak-` names the bonus days' arms",
            ));
        }
        if self.holdout_percent != 0 {
            return Err(invalid(
                "holdout_percent",
                "a check-in holds no one out: must be 0",
            ));
        }
        if cycle_days.is_some_and(|c| !(1..=366).contains(&c)) {
            return Err(invalid("trigger.cycle_days", "must be 1 to 366"));
        }
        let last = cycle_days.unwrap_or(366);
        let mut days = std::collections::HashSet::new();
        for (i, b) in streak_bonuses.iter().enumerate() {
            if !(1..=last).contains(&b.day) || !days.insert(b.day) {
                return Err(invalid(
                    &format!("trigger.streak_bonuses[{i}].day"),
                    &format!("must be 1 to {last}, each day once"),
                ));
            }
            if !(1..=MAX_POINTS).contains(&b.points) {
                return Err(invalid(
                    &format!("trigger.streak_bonuses[{i}].points"),
                    &format!("must be 1 to {MAX_POINTS}"),
                ));
            }
        }
        Ok(())
    }

    /// Refuses a referral campaign that cannot run: the referrer's and referee's rewards are
    /// points (a refund takes them back), everyone may refer, and no one is held out.
    fn check_referral(&self) -> ServiceResult<()> {
        let Some(Trigger::Referral {
            referee_points,
            min_order,
            max_per_referrer,
            returns_days,
        }) = &self.trigger
        else {
            return Ok(());
        };
        if !(1..=MAX_POINTS).contains(referee_points) {
            return Err(invalid(
                "trigger.referee_points",
                &format!("must be 1 to {MAX_POINTS}"),
            ));
        }
        if !(1..=1_000_000_000_000).contains(min_order) {
            return Err(invalid(
                "trigger.min_order",
                "must be 1 to 1000000000000 minor units",
            ));
        }
        if *max_per_referrer == Some(0) {
            return Err(invalid("trigger.max_per_referrer", "must be at least 1"));
        }
        if *returns_days > 365 {
            return Err(invalid("trigger.returns_days", "must be 0 to 365"));
        }
        if self.audience != Audience::Everyone || self.holdout_percent != 0 {
            return Err(invalid(
                "trigger",
                "a referral campaign's audience is everyone, with no holdout: the referral is \
                 what picks its members",
            ));
        }
        if self.variants.iter().any(|v| v.id == REFEREE) {
            return Err(invalid("variants", "`referee` names the referee's arm"));
        }
        if let Some(i) = self
            .variants
            .iter()
            .position(|v| !matches!(v.reward, Reward::Points { .. }))
        {
            return Err(invalid(
                &format!("variants[{i}].reward"),
                "a referral pays points, so that a refund can take them back",
            ));
        }
        if self.budget.is_some_and(|b| b.unit != BudgetUnit::Points) {
            return Err(invalid(
                "budget.unit",
                "a referral campaign's budget is in points",
            ));
        }
        Ok(())
    }

    /// Refuses a campaign that cannot run, naming the field at fault.
    pub fn validate(&self) -> ServiceResult<()> {
        crate::code::check_id("id", &self.id)?;
        check_name("name", &self.name)?;
        match &self.audience {
            Audience::Everyone => {}
            Audience::Segment { segment } => crate::code::check_id("audience.segment", segment)?,
            Audience::Tiers { tiers: values } | Audience::Tags { tags: values } => {
                if values.is_empty() || values.len() > MAX_AUDIENCE_VALUES {
                    return Err(invalid(
                        "audience",
                        &format!("name 1 to {MAX_AUDIENCE_VALUES} tiers or tags"),
                    ));
                }
                for v in values {
                    check_name("audience", v)?;
                }
            }
        }
        if self.variants.is_empty() || self.variants.len() > MAX_VARIANTS {
            return Err(invalid(
                "variants",
                &format!("1 to {MAX_VARIANTS} variants, each with its reward"),
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for (i, v) in self.variants.iter().enumerate() {
            crate::code::check_id(&format!("variants[{i}].id"), &v.id)?;
            if !ids.insert(v.id.as_str()) {
                return Err(invalid(&format!("variants[{i}].id"), "is used twice"));
            }
            if v.weight == 0 || v.weight > 10_000 {
                return Err(invalid(
                    &format!("variants[{i}].weight"),
                    "must be 1 to 10000",
                ));
            }
            self.check_reward(&format!("variants[{i}].reward"), &v.reward)?;
        }
        if self.holdout_percent > 50 {
            return Err(invalid("holdout_percent", "must be 0 to 50"));
        }
        self.schedule.resolve()?;
        if let Some(b) = &self.budget
            && !(1..=MAX_BUDGET).contains(&b.limit)
        {
            return Err(invalid(
                "budget.limit",
                &format!("must be 1 to {MAX_BUDGET}"),
            ));
        }
        if let Some(Trigger::OrderAtLeast { amount }) = &self.trigger
            && !(1..=1_000_000_000_000).contains(amount)
        {
            return Err(invalid(
                "trigger.amount",
                "must be 1 to 1000000000000 minor units",
            ));
        }
        if let Some(Trigger::Birthday { days_before }) = &self.trigger
            && *days_before > 30
        {
            return Err(invalid("trigger.days_before", "must be 0 to 30"));
        }
        self.check_referral()?;
        self.check_check_in()?;
        if let Some(Trigger::TierUpgrade { tiers }) = &self.trigger {
            if tiers.len() > MAX_AUDIENCE_VALUES {
                return Err(invalid(
                    "trigger.tiers",
                    &format!("name at most {MAX_AUDIENCE_VALUES} tiers"),
                ));
            }
            for t in tiers {
                check_name("trigger.tiers", t)?;
            }
        }
        if self.trigger.is_some() && matches!(self.audience, Audience::Segment { .. }) {
            return Err(invalid(
                "trigger",
                "a segment's campaign is broadcast; a triggered one names everyone, tiers or tags",
            ));
        }
        if let Some(tag) = &self.actions.tag {
            check_name("actions.tag", tag)?;
        }
        if let Some(n) = &self.actions.notify {
            check_name("actions.notify.template", &n.template)?;
            let known = ["sms", "wechat", "app", "email"];
            if n.channels.is_empty() || n.channels.iter().any(|c| !known.contains(&c.as_str())) {
                return Err(invalid(
                    "actions.notify.channels",
                    "name one or more of sms, wechat, app and email",
                ));
            }
        }
        if self
            .attribution_days
            .is_some_and(|d| !(1..=365).contains(&d))
        {
            return Err(invalid("attribution_days", "must be 1 to 365"));
        }
        if let Some(cap) = &self.frequency_cap {
            if cap.times == 0 {
                return Err(invalid("frequency_cap.times", "must be at least 1"));
            }
            if cap.per_days.is_some_and(|d| !(1..=366).contains(&d)) {
                return Err(invalid("frequency_cap.per_days", "must be 1 to 366"));
            }
        }
        Ok(())
    }

    fn check_reward(&self, field: &str, reward: &Reward) -> ServiceResult<()> {
        let unit = match reward {
            Reward::Coupon { template } => {
                crate::code::check_id(&format!("{field}.template"), template)?;
                BudgetUnit::Coupons
            }
            Reward::Points { points } => {
                if !(1..=MAX_POINTS).contains(points) {
                    return Err(invalid(
                        &format!("{field}.points"),
                        &format!("must be 1 to {MAX_POINTS}"),
                    ));
                }
                BudgetUnit::Points
            }
            Reward::StoredValue { amount } => {
                if !(1..=MAX_STORED_VALUE).contains(amount) {
                    return Err(invalid(
                        &format!("{field}.amount"),
                        &format!("must be 1 to {MAX_STORED_VALUE} minor units"),
                    ));
                }
                BudgetUnit::StoredValue
            }
        };
        match self.budget {
            Some(b) if b.unit != unit => Err(invalid(
                &format!("{field}.type"),
                "must be paid in the budget's unit (points for a points budget, coupons for a \
                 coupons budget, stored value for a stored-value budget)",
            )),
            _ => Ok(()),
        }
    }

    /// Days after a reward in which the member's orders are the campaign's.
    pub fn attribution_days(&self) -> u32 {
        self.attribution_days.unwrap_or(ATTRIBUTION_DAYS)
    }

    /// The budget units one grant of `reward` takes.
    pub fn units(reward: &Reward) -> u64 {
        match reward {
            Reward::Coupon { .. } => 1,
            Reward::Points { points } => u64::try_from(*points).unwrap_or(0),
            Reward::StoredValue { amount } => u64::try_from(*amount).unwrap_or(0),
        }
    }
}
