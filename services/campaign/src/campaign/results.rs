//! A campaign's effectiveness, per arm (each variant and the holdout): the members it
//! reached, the rewards it paid, the coupons redeemed, and the orders and spend attributed
//! to it, against the holdout's. Everything is counted from facts (a reward paid, a coupon
//! redeemed, an order) each counted once by its key, so a fact read twice counts once.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The holdout's arm.
pub const HOLDOUT: &str = "holdout";

/// An arm's counters. Signed: an undone redemption or a refund counts back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Members assigned to the arm: rewarded, or kept out by the holdout.
    pub members: i64,
    /// Rewards paid (coupons issued, points adjusted).
    pub issued: i64,
    /// Of those, coupons issued.
    pub coupons: i64,
    /// Points paid.
    pub points: i64,
    /// Bonus stored value given, in minor units.
    #[serde(default)]
    pub stored_value: i64,
    /// The arm's coupons redeemed, less those undone.
    pub redeemed: i64,
    /// Discount those coupons gave, in minor units.
    pub discount: i64,
    /// Orders attributed: a coupon of the campaign on it, or placed within the attribution
    /// window after a reward (or after being held out).
    pub orders: i64,
    /// Spend attributed, in minor units, refunds taken off.
    pub spend: i64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.members += other.members;
        self.issued += other.issued;
        self.coupons += other.coupons;
        self.points += other.points;
        self.stored_value += other.stored_value;
        self.redeemed += other.redeemed;
        self.discount += other.discount;
        self.orders += other.orders;
        self.spend += other.spend;
    }
}

/// Something to count once: `key` is unique within its campaign (`member/m1`,
/// `grant/m1/welcome`, `order/P1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub key: String,
    pub arm: String,
    /// Counted only if this fact was (a refund after its order, an undo after its
    /// redemption).
    pub after: Option<String>,
    pub add: Counts,
}

/// What ties a member, a coupon or an order to an arm of a campaign, from `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub campaign: String,
    pub arm: String,
    pub at_ms: i64,
}

/// What links name: `member:<id>`, `coupon:<code>`, `order:<id>`.
pub fn member_link(member: &str) -> String {
    format!("member:{member}")
}

pub fn coupon_link(code: &str) -> String {
    format!("coupon:{code}")
}

pub fn order_link(order: &str) -> String {
    format!("order:{order}")
}

/// One campaign's facts and the links they make, written at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub campaign: String,
    pub facts: Vec<Fact>,
    /// (what is linked, the link): kept whether or not their facts were counted before.
    pub links: Vec<(String, Link)>,
}

/// One arm's results, as the API gives them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmResults {
    pub arm: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// Redeemed over issued coupons, 0 to 1; None before any coupon is issued.
    pub redemption_rate: Option<f64>,
    /// Spend per member of the arm, in minor units.
    pub spend_per_member: Option<f64>,
    /// The arm's spend less what its members would have spent at the holdout's rate, in
    /// minor units; None for the holdout, or without holdout members to compare with.
    pub incremental_spend: Option<f64>,
    /// Incremental spend per unit of discount given (a return of 3.0: three of spend for one
    /// of discount); None without discount.
    pub return_on_discount: Option<f64>,
    /// Incremental spend (minor units) per point paid; None without points.
    pub spend_per_point: Option<f64>,
    /// Incremental spend per unit of bonus stored value given; None without any.
    pub return_on_stored_value: Option<f64>,
}

/// A campaign's results: every arm, and the campaign as a whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignResults {
    pub campaign: String,
    pub attribution_days: u32,
    pub arms: Vec<ArmResults>,
    /// Every variant together (the holdout apart).
    pub total: ArmResults,
}

fn ratio(a: i64, b: i64) -> Option<f64> {
    (b != 0).then(|| a as f64 / b as f64)
}

fn arm_results(arm: &str, counts: Counts, holdout: Option<&Counts>) -> ArmResults {
    let spend_per_member = ratio(counts.spend, counts.members);
    let incremental_spend = match holdout {
        Some(h) if arm != HOLDOUT && h.members > 0 => {
            let baseline = h.spend as f64 / h.members as f64 * counts.members as f64;
            Some(counts.spend as f64 - baseline)
        }
        _ => None,
    };
    let per = |cost: i64| {
        incremental_spend
            .filter(|_| cost > 0)
            .map(|inc| inc / cost as f64)
    };
    ArmResults {
        arm: arm.to_string(),
        redemption_rate: ratio(counts.redeemed, counts.coupons),
        spend_per_member,
        incremental_spend,
        return_on_discount: per(counts.discount),
        spend_per_point: per(counts.points),
        return_on_stored_value: per(counts.stored_value),
        counts,
    }
}

impl CampaignResults {
    /// The results of `campaign` from its counters per arm; `variants` in the campaign's
    /// order (an arm with nothing counted yet is shown with zeros).
    pub fn new(
        campaign: &str,
        attribution_days: u32,
        variants: &[String],
        mut counted: BTreeMap<String, Counts>,
    ) -> Self {
        let holdout = counted.get(HOLDOUT).copied();
        let mut arms = Vec::new();
        let mut total = Counts::default();
        for v in variants {
            let counts = counted.remove(v).unwrap_or_default();
            total.add(&counts);
            arms.push(arm_results(v, counts, holdout.as_ref()));
        }
        // Arms of variants since removed from the campaign still count in its total.
        for (arm, counts) in counted.into_iter().filter(|(a, _)| a != HOLDOUT) {
            total.add(&counts);
            arms.push(arm_results(&arm, counts, holdout.as_ref()));
        }
        arms.push(arm_results(
            HOLDOUT,
            holdout.unwrap_or_default(),
            holdout.as_ref(),
        ));
        Self {
            campaign: campaign.to_string(),
            attribution_days,
            arms,
            total: arm_results("total", total, holdout.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_spend_is_measured_against_the_holdouts_spend_per_member() {
        let mut counted = BTreeMap::new();
        let a = Counts {
            members: 90,
            issued: 90,
            coupons: 90,
            redeemed: 30,
            discount: 3_000,
            orders: 40,
            spend: 90_000,
            ..Counts::default()
        };
        let h = Counts {
            members: 10,
            orders: 2,
            spend: 5_000,
            ..Counts::default()
        };
        counted.insert("a".to_string(), a);
        counted.insert(HOLDOUT.to_string(), h);
        let r = CampaignResults::new("C", 30, &["a".to_string(), "b".to_string()], counted);
        let names: Vec<&str> = r.arms.iter().map(|a| a.arm.as_str()).collect();
        assert_eq!(names, ["a", "b", HOLDOUT]);
        let arm = &r.arms[0];
        assert_eq!(arm.redemption_rate, Some(30.0 / 90.0));
        // The holdout spent 500 a member: 90 members at that rate would have spent 45,000.
        assert_eq!(arm.incremental_spend, Some(45_000.0));
        assert_eq!(arm.return_on_discount, Some(15.0));
        assert_eq!(arm.spend_per_point, None);
        assert_eq!(r.arms[1].counts, Counts::default());
        assert_eq!(
            r.arms[2].incremental_spend, None,
            "the holdout is the baseline"
        );
        assert_eq!(r.total.counts.spend, 90_000);
    }

    #[test]
    fn without_a_holdout_there_is_no_incremental_spend() {
        let mut counted = BTreeMap::new();
        counted.insert(
            "a".to_string(),
            Counts {
                members: 5,
                issued: 5,
                points: 500,
                spend: 1_000,
                ..Counts::default()
            },
        );
        let r = CampaignResults::new("C", 30, &["a".to_string()], counted);
        assert_eq!(r.arms[0].incremental_spend, None);
        assert_eq!(r.arms[0].spend_per_point, None);
        assert_eq!(r.arms[0].redemption_rate, None, "no coupon issued");
    }
}
