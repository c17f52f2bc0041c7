//! Erasure on request (PIPL, GDPR): the member's key, sealed fields, blind indexes and
//! birthday index row are deleted in one write, so its personal data can never be read again
//! (crypto-shredding), while its id stays as the pseudonym under which the ledger and the
//! orders are kept. An erasure is carried out when it is requested; the status shows when,
//! and the deadline it was due by.
//! The store keeps overwritten rows until it compacts them, so [`Members::purge_erased`]
//! compacts them away (memberd runs it with the daily review, well within the deadline).

use super::{ATTEMPTS, Members, busy};
use crate::store::{MemberWrite, Written};
use loyalty_common::Timestamp;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};
use serde::Serialize;
use std::sync::atomic::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureState {
    /// No erasure was requested.
    None,
    /// Carried out: nothing personal is readable.
    Completed,
}

/// Where a member's erasure stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureStatus {
    pub member: String,
    pub state: ErasureState,
    pub requested_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    /// The configured deadline after the request.
    pub due_by: Option<Timestamp>,
}

impl Members {
    /// Erases the member's personal data; its status. Erasing again changes nothing.
    pub async fn erase(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<ErasureStatus> {
        for _ in 0..ATTEMPTS {
            let (mut stored, mut facts) = self.existing(tenant, member).await?;
            if stored.erased_at.is_some() {
                return self.erasure_status(tenant, member).await;
            }
            let released = std::mem::take(&mut stored.indexes);
            let released_birthday = stored.birthday.take();
            let now = self.clock.now();
            stored.key = None;
            stored.sealed.clear();
            stored.erased_at = Some(now);
            stored.updated_at = now;
            stored.version += 1;
            facts.value.erased = true;
            facts.version += 1;
            let data = serde_json::json!({"erased_at": now.to_rfc3339()});
            let write = MemberWrite {
                tenant: tenant.to_string(),
                member: member.to_string(),
                events: vec![self.event(tenant.as_str(), member.as_str(), "erased", &data)],
                profile: Some(stored),
                released,
                released_birthday,
                facts: Some(facts),
                ..MemberWrite::default()
            };
            if self.repo.write(write).await? == Written::Yes {
                self.unpurged_erasures.store(true, Ordering::SeqCst);
                return self.erasure_status(tenant, member).await;
            }
        }
        Err(busy())
    }

    /// Removes the erased members' old rows from storage for good, if any member was erased
    /// since the last purge (memberd does this with the daily review); whether it ran.
    pub async fn purge_erased(&self) -> ServiceResult<bool> {
        if !self.unpurged_erasures.swap(false, Ordering::SeqCst) {
            return Ok(false);
        }
        if let Err(e) = self.repo.purge().await {
            self.unpurged_erasures.store(true, Ordering::SeqCst);
            return Err(e);
        }
        Ok(true)
    }

    /// Where the member's erasure stands.
    pub async fn erasure_status(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<ErasureStatus> {
        let (stored, _) = self.existing(tenant, member).await?;
        let deadline = i64::from(self.erasure_deadline_days);
        Ok(ErasureStatus {
            member: member.to_string(),
            state: match stored.erased_at {
                Some(_) => ErasureState::Completed,
                None => ErasureState::None,
            },
            requested_at: stored.erased_at,
            completed_at: stored.erased_at,
            due_by: stored.erased_at.map(|at| at.plus_days(deadline)),
        })
    }
}
