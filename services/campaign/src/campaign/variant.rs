//! Members assigned to a campaign's arms by a stable hash of the campaign and the member:
//! the same member lands in the same arm on every call, on every replica, before and after
//! a restart, with no assignment stored. The first half of the hash decides the holdout
//! (in hundredths of a percent), the second the variant by weight, so changing weights never
//! moves a member in or out of the holdout.

use super::{Campaign, Variant};
use sha2::{Digest, Sha256};

/// Where a member stands in a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm<'a> {
    /// Kept out, to measure the campaign against.
    Holdout,
    Variant(&'a Variant),
}

impl Arm<'_> {
    /// The arm's name in events and reports: the variant's id, or `holdout`.
    pub fn name(&self) -> &str {
        match self {
            Arm::Holdout => "holdout",
            Arm::Variant(v) => &v.id,
        }
    }
}

/// The arm of `member` in `campaign`.
pub fn arm<'a>(campaign: &'a Campaign, member: &str) -> Arm<'a> {
    let digest = Sha256::digest(format!("{}\n{member}", campaign.id));
    let half = |range: std::ops::Range<usize>| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[range]);
        u64::from_be_bytes(bytes)
    };
    if half(0..8) % 10_000 < u64::from(campaign.holdout_percent) * 100 {
        return Arm::Holdout;
    }
    let total: u64 = campaign.variants.iter().map(|v| u64::from(v.weight)).sum();
    let mut pick = half(8..16) % total.max(1);
    for v in &campaign.variants {
        if pick < u64::from(v.weight) {
            return Arm::Variant(v);
        }
        pick -= u64::from(v.weight);
    }
    // Weights are at least 1 (validated), so the loop always picks; the last is a safe answer.
    campaign.variants.last().map_or(Arm::Holdout, Arm::Variant)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::campaign::{Actions, Audience, Reward, Schedule};

    fn campaign(holdout: u32, weights: &[u32]) -> Campaign {
        Campaign {
            id: "XMAS".into(),
            name: "Christmas".into(),
            audience: Audience::Everyone,
            variants: weights
                .iter()
                .enumerate()
                .map(|(i, w)| Variant {
                    id: format!("v{i}"),
                    weight: *w,
                    reward: Reward::Points { points: 10 },
                })
                .collect(),
            holdout_percent: holdout,
            schedule: Schedule {
                starts: "2026-12-24".into(),
                ends: None,
                time_zone: "UTC".into(),
            },
            budget: None,
            frequency_cap: None,
            trigger: None,
            actions: Actions::default(),
            attribution_days: None,
        }
    }

    #[test]
    fn arms_are_stable_and_near_their_shares() {
        let c = campaign(10, &[1, 3]);
        let mut counts = std::collections::HashMap::new();
        for m in 0..20_000 {
            let member = format!("m{m}");
            let arm = arm(&c, &member).name().to_string();
            assert_eq!(arm, super::arm(&c, &member).name(), "the same arm twice");
            *counts.entry(arm).or_insert(0) += 1;
        }
        let share = |arm: &str| f64::from(counts[arm]) / 20_000.0;
        assert!((share("holdout") - 0.10).abs() < 0.01, "{counts:?}");
        assert!((share("v0") - 0.225).abs() < 0.015, "{counts:?}");
        assert!((share("v1") - 0.675).abs() < 0.015, "{counts:?}");
    }

    #[test]
    fn new_weights_never_move_a_member_across_the_holdout() {
        let (before, after) = (campaign(20, &[1, 1]), campaign(20, &[5, 1, 1]));
        for m in 0..5_000 {
            let member = format!("m{m}");
            assert_eq!(
                arm(&before, &member) == Arm::Holdout,
                arm(&after, &member) == Arm::Holdout
            );
        }
    }
}
