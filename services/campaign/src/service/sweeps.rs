//! The campaign service's scheduled work: holds that lapsed give their coupons back, and
//! members' coupons about to lapse are announced once each (`coupon_expiring_soon`), for a
//! partner's SMS, WeChat or app-push system to remind the member.

use super::Campaigns;
use crate::coupon::{Coupon, RedemptionState};
use crate::events::CampaignEvent;
use crate::store::ExpiryCursor;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

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
    pub async fn announce_expiring(&self) -> ServiceResult<u64> {
        let horizon = self.now_ms() + self.expiring_notice_ms;
        // Coupons that lapsed already have nothing to remind anyone of: start at now.
        let stored = self.store.expiry_cursor().await?;
        let now = ExpiryCursor {
            until_ms: self.now_ms(),
            tenant: String::new(),
            code: String::new(),
        };
        let mut cursor = stored.max(now);
        let mut announced = 0;
        loop {
            let page = self.store.coupons_lapsing(&cursor, horizon, PAGE).await?;
            let Some((last_tenant, last)) = page.last() else {
                return Ok(announced);
            };
            let next = ExpiryCursor {
                until_ms: last.valid_until_ms,
                tenant: last_tenant.clone(),
                code: last.code.clone(),
            };
            let mut events = Vec::new();
            for (tenant, coupon) in &page {
                let Some(member) = &coupon.member else {
                    continue;
                };
                let tenant_id = TenantId::parse(tenant.as_str())?;
                let template = self.store.template(&tenant_id, &coupon.template).await?;
                let usage = self
                    .store
                    .usage(&tenant_id, &coupon.template, &coupon.code, member)
                    .await?;
                let uses = template.map_or(1, |t| t.value.uses_per_code);
                // Lapsed already, or used up: nothing to remind anyone of; announced when
                // it was issued: nothing more to say.
                let spent = coupon.valid_until_ms <= self.now_ms() || usage.code_uses >= uses;
                if spent || self.announced_at_issue(coupon) {
                    continue;
                }
                events.push(self.expiring_event(tenant, coupon));
            }
            announced += events.len() as u64;
            self.store.advance_expiry(next.clone(), events).await?;
            cursor = next;
        }
    }
}
