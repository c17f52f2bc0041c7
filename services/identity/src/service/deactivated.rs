//! Staff accounts an administrator deactivated, kept in memory like ended sessions: an
//! access token names its staff member and session, and the tokens of a deactivated account
//! are refused at once, not when they expire. A reactivated account logs in again, but the
//! sessions it had begun before its deactivation stay ended. Each replica loads this at start
//! and on a resync, and takes the others' changes from the change feed.

use super::IdentityPorts;
use crate::model::{PLATFORM, Staff};
use loyalty_common::Timestamp;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{SessionId, StaffId};
use std::collections::HashMap;
use std::sync::RwLock;

/// What stands against an account's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    pub(crate) active: bool,
    /// Sessions begun at or before this are ended.
    pub(crate) sessions_ended_at: Timestamp,
}

impl Cut {
    pub(crate) fn of(staff: &Staff) -> Option<Self> {
        let sessions_ended_at = staff.sessions_ended_at?;
        Some(Self {
            active: !staff.disabled,
            sessions_ended_at,
        })
    }
}

#[derive(Default)]
pub(crate) struct Deactivated {
    staff: RwLock<HashMap<StaffId, Cut>>,
}

impl Deactivated {
    /// Every account of every tenant, and of the platform, ever deactivated.
    pub(crate) async fn load(ports: &IdentityPorts) -> ServiceResult<HashMap<StaffId, Cut>> {
        let mut tenants: Vec<String> = ports
            .tenants
            .tenants()
            .await?
            .into_iter()
            .map(|t| t.id.to_string())
            .collect();
        tenants.push(PLATFORM.to_string());
        let mut cuts = HashMap::new();
        for tenant in tenants {
            for staff in ports.staff.staff_of(&tenant).await? {
                if let Some(cut) = Cut::of(&staff) {
                    cuts.insert(staff.id, cut);
                }
            }
        }
        Ok(cuts)
    }

    pub(crate) fn replace(&self, cuts: HashMap<StaffId, Cut>) {
        *self.staff.write().unwrap_or_else(|p| p.into_inner()) = cuts;
    }

    /// Whether a token of `staff`'s `session` is refused.
    pub(crate) fn refuses(&self, staff: StaffId, session: SessionId) -> bool {
        let cuts = self.staff.read().unwrap_or_else(|p| p.into_inner());
        cuts.get(&staff).is_some_and(|cut| {
            !cut.active || session.0.timestamp_ms() as i64 <= cut.sessions_ended_at.0
        })
    }

    pub(crate) fn set(&self, staff: StaffId, cut: Cut) {
        self.staff
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(staff, cut);
    }

    /// Back to what is stored (after a failed write).
    pub(crate) fn restore(&self, staff: StaffId, stored: Option<&Staff>) {
        let mut cuts = self.staff.write().unwrap_or_else(|p| p.into_inner());
        match stored.and_then(Cut::of) {
            Some(cut) => cuts.insert(staff, cut),
            None => cuts.remove(&staff),
        };
    }
}
