//! The campaign service's scheduled work: holds that lapsed give their coupons back, and
//! members' coupons about to lapse are announced once each (`coupon_expiring_soon`), for a
//! partner's SMS, WeChat or app-push system to remind the member.

use super::Campaigns;
use crate::coupon::{Coupon, RedemptionState};
use crate::events::CampaignEvent;
use crate::store::{EXPIRY, ExpiryCursor};
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use loyalty_region::background::Handling;

/// Rows handled per store call.
const PAGE: usize = 500;
/// How old a write cut short must be before the sweep finishes or undoes it: far longer
/// than any request's deadline, so it never races the request itself.
pub const RECOVERY_GRACE_MS: i64 = 5 * 60_000;

/// A coupon that lapses less than this much more than the notice after it was issued is
/// announced when issued: a sweep running while it is written may have passed its lapse
/// time already.
const ISSUE_MARGIN_MS: i64 = 60_000;

impl Campaigns {
    /// Whether `coupon` was announced as expiring soon when it was issued: a member's coupon
    /// that lapses within the notice (and a margin) from the start. The sweep's cursor may
    /// have passed its lapse time then, so the sweep leaves it alone.
    pub(super) fn announced_at_issue(&self, coupon: &Coupon) -> bool {
        coupon.member.is_some()
            && coupon.valid_until_ms - coupon.issued_ms <= self.expiring_notice_ms + ISSUE_MARGIN_MS
    }

    /// A `coupon_expiring_soon` event for a member's `coupon` of `tenant`.
    pub(super) fn expiring_event(&self, tenant: &str, coupon: &Coupon) -> CampaignEvent {
        self.event(
            tenant,
            coupon.member.as_deref().unwrap_or_default(),
            "coupon_expiring_soon",
            &serde_json::json!({"code": coupon.code, "template": coupon.template,
                "valid_until_ms": coupon.valid_until_ms}),
        )
    }

    /// Releases every hold that lapsed by now; how many.
    pub async fn release_lapsed_holds(&self) -> ServiceResult<u64> {
        let mut released = 0;
        loop {
            let lapsed = self.store.lapsed_holds(self.now_ms(), PAGE).await?;
            let lapsed: Vec<_> = lapsed
                .into_iter()
                .filter(|r| self.works_here(&r.tenant))
                .collect();
            // The other region's stay due until it releases them: a page of them ends this
            // round.
            if lapsed.is_empty() {
                return Ok(released);
            }
            for r in lapsed {
                let tenant = TenantId::parse(r.tenant.as_str())?;
                let done = self
                    .settle(
                        &tenant,
                        &r,
                        RedemptionState::Held,
                        RedemptionState::Released,
                        "release it",
                    )
                    .await?;
                released += u64::from(!done.replayed);
            }
        }
    }

    /// Finishes or undoes the store's writes cut short (a crash in the middle of a
    /// redemption on a store where it takes several steps); how many.
    pub async fn recover(&self) -> ServiceResult<u64> {
        if !self.may_work() {
            return Ok(0);
        }
        let here = |tenant: &str| self.works_here(tenant);
        self.store
            .recover(self.now_ms() - RECOVERY_GRACE_MS, &here)
            .await
    }

    /// Announces every member coupon lapsing within the notice
    /// ([`Campaigns::with_expiring_notice`]) that has not been announced and still has a use
    /// left; how many were announced. The events and the
    /// sweep's cursor are written together, so a sweep cut short announces nothing twice.
    ///
    /// In two regions each region's sweep keeps a cursor of its own and announces its
    /// tenants' coupons, as the outbox readers do their events ([`super::outbox_readers`]):
    /// one covering for a lost region starts from that region's cursor when it is behind,
    /// so its own tenants' coupons in between may be announced a second time, never none.
    pub async fn announce_expiring(&self) -> ServiceResult<u64> {
        if !self.may_work() {
            return Ok(0);
        }
        let (mine, theirs) = self.progress_names(EXPIRY);
        let covering = theirs.as_ref().filter(|_| self.covers_peer());
        let horizon = self.now_ms() + self.expiring_notice_ms;
        let mut cursor = self.expiry_cursor_of(&mine).await?;
        if let Some(theirs) = covering {
            cursor = cursor.min(self.expiry_cursor_of(theirs).await?);
        }
        // Coupons that lapsed already have nothing to remind anyone of: start at now.
        let now = ExpiryCursor {
            until_ms: self.now_ms(),
            tenant: String::new(),
            code: String::new(),
        };
        cursor = cursor.max(now);
        let mut announced = 0;
        loop {
            let page = self.store.coupons_lapsing(&cursor, horizon, PAGE).await?;
            let (mut next, mut events, mut waiting) = (None, Vec::new(), false);
            for (tenant, coupon) in &page {
                match self.handling(tenant) {
                    Handling::Here => events.extend(self.expiring_notice(tenant, coupon).await?),
                    Handling::Elsewhere => {}
                    Handling::Wait(_) => {
                        waiting = true;
                        break;
                    }
                }
                next = Some(ExpiryCursor {
                    until_ms: coupon.valid_until_ms,
                    tenant: tenant.clone(),
                    code: coupon.code.clone(),
                });
            }
            let Some(next) = next else { break };
            announced += events.len() as u64;
            self.store
                .advance_expiry(&mine, next.clone(), events)
                .await?;
            cursor = next;
            if waiting {
                break;
            }
        }
        if let Some(theirs) = covering
            && self.covers_peer()
        {
            self.store
                .advance_expiry(theirs, cursor, Vec::new())
                .await?;
        }
        Ok(announced)
    }

    /// The cursor saved as `name`; before the first, the one-region sweep's.
    async fn expiry_cursor_of(&self, name: &str) -> ServiceResult<ExpiryCursor> {
        let cursor = self.store.expiry_cursor(name).await?;
        if cursor == ExpiryCursor::default() && name != EXPIRY {
            return self.store.expiry_cursor(EXPIRY).await;
        }
        Ok(cursor)
    }

    /// The notice of a member's `coupon` of `tenant` lapsing soon, unless there is nothing to
    /// remind anyone of: lapsed already, used up, or announced when it was issued.
    async fn expiring_notice(
        &self,
        tenant: &str,
        coupon: &Coupon,
    ) -> ServiceResult<Option<CampaignEvent>> {
        let Some(member) = &coupon.member else {
            return Ok(None);
        };
        let tenant_id = TenantId::parse(tenant)?;
        let template = self.store.template(&tenant_id, &coupon.template).await?;
        let usage = self
            .store
            .usage(&tenant_id, &coupon.template, &coupon.code, member)
            .await?;
        let uses = template.map_or(1, |t| t.value.uses_per_code);
        let spent = coupon.valid_until_ms <= self.now_ms() || usage.code_uses >= uses;
        if spent || self.announced_at_issue(coupon) {
            return Ok(None);
        }
        Ok(Some(self.expiring_event(tenant, coupon)))
    }
}
