//! The campaign service's scheduled work: holds that lapsed give their coupons back, and
//! members' coupons about to lapse are announced once each (`coupon_expiring_soon`), for a
//! partner's SMS, WeChat or app-push system to remind the member.

use super::Campaigns;
use crate::coupon::RedemptionState;
use crate::store::ExpiryCursor;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

/// Rows handled per store call.
const PAGE: usize = 500;
/// How old a write cut short must be before the sweep finishes or undoes it: far longer
/// than any request's deadline, so it never races the request itself.
pub const RECOVERY_GRACE_MS: i64 = 5 * 60_000;

impl Campaigns {
    /// Releases every hold that lapsed by now; how many.
    pub async fn release_lapsed_holds(&self) -> ServiceResult<u64> {
        let mut released = 0;
        loop {
            let lapsed = self.store.lapsed_holds(self.now_ms(), PAGE).await?;
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
        self.store.recover(self.now_ms() - RECOVERY_GRACE_MS).await
    }

    /// Announces every member coupon lapsing within `notice_days` that has not been
    /// announced and still has a use left; how many were announced. The events and the
    /// sweep's cursor are written together, so a sweep cut short announces nothing twice.
    pub async fn announce_expiring(&self, notice_days: u32) -> ServiceResult<u64> {
        let horizon = self.now_ms() + i64::from(notice_days) * 86_400_000;
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
                // Lapsed already, or used up: nothing to remind anyone of.
                if coupon.valid_until_ms <= self.now_ms() || usage.code_uses >= uses {
                    continue;
                }
                events.push(self.event(
                    tenant,
                    member,
                    "coupon_expiring_soon",
                    &serde_json::json!({"code": coupon.code, "template": coupon.template,
                        "valid_until_ms": coupon.valid_until_ms}),
                ));
            }
            announced += events.len() as u64;
            self.store.advance_expiry(next.clone(), events).await?;
            cursor = next;
        }
    }
}
