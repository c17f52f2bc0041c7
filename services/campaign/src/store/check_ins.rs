//! The check-ins half of the campaign store's port: each member's last check-in day and
//! streak per campaign, moved once per local day however many check-ins race.

use crate::events::CampaignEvent;
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use serde::{Deserialize, Serialize};

/// A member's check-in as the store has it after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedIn {
    /// The local day (days since 1970-01-01 in the campaign's zone) of the last check-in.
    pub day: i64,
    /// Consecutive days up to and including `day`.
    pub streak: u32,
    /// Whether this call checked in (false: the member had checked in on `day` already, or
    /// on a later day, which is answered as it stands).
    pub new: bool,
}

#[async_trait]
pub trait CheckInRepository: Send + Sync + 'static {
    /// Checks `member` in on local `day` in `campaign`: the day after the last check-in
    /// continues its streak, a later one starts a new streak of 1, both with `events`; the day
    /// of the last check-in, or one before it, answers the last check-in unchanged.
    async fn check_in(
        &self,
        tenant: &TenantId,
        campaign: &str,
        member: &str,
        day: i64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<CheckedIn>;
}

/// The check-in that follows `last` on `day` (None: none yet).
pub fn next(last: Option<(i64, u32)>, day: i64) -> CheckedIn {
    match last {
        Some((last_day, streak)) if day <= last_day => CheckedIn {
            day: last_day,
            streak,
            new: false,
        },
        Some((last_day, streak)) if day == last_day + 1 => CheckedIn {
            day,
            streak: streak.saturating_add(1),
            new: true,
        },
        _ => CheckedIn {
            day,
            streak: 1,
            new: true,
        },
    }
}
