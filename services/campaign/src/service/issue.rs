//! Issuing coupons: one to a member, one to every member of a segment, a batch of bearer
//! codes (printed, or handed to a partner), and codes printed elsewhere, imported. Every
//! issue is keyed, so a retry (or a batch resumed after a crash) finds what it made.

use super::Campaigns;
use crate::code;
use crate::coupon::Coupon;
use crate::store::{Added, NewCoupon};
use crate::template::CouponTemplate;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};

/// Coupons added per store batch when generating or importing.
pub const CHUNK: usize = 5_000;
/// The most codes one batch may generate.
pub const MAX_BATCH: usize = 1_000_000;
/// Attempts at a fresh code when one collides with a stored code.
const CODE_ATTEMPTS: usize = 8;

/// What a batch or a segment issue did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Issued {
    /// Coupons added by this call.
    pub added: u64,
    /// Coupons an earlier call (same key) had added.
    pub already: u64,
    /// Imported codes the tenant already had under another batch.
    pub taken: Vec<String>,
}

impl Campaigns {
    fn new_coupon(
        &self,
        template: &CouponTemplate,
        code: String,
        member: Option<&MemberId>,
        batch: Option<&str>,
    ) -> Coupon {
        let now = self.now_ms();
        let (valid_from_ms, valid_until_ms) = template.validity.window(now);
        Coupon {
            code,
            template: template.id.clone(),
            member: member.map(|m| m.to_string()),
            issued_ms: now,
            valid_from_ms,
            valid_until_ms,
            batch: batch.map(str::to_string),
        }
    }

    /// Issues a coupon of `template` to `member`. `issue_key` makes it once: the same key
    /// answers with the coupon it issued.
    pub async fn issue(
        &self,
        tenant: &TenantId,
        template: &str,
        member: &MemberId,
        issue_key: &str,
    ) -> ServiceResult<Coupon> {
        code::check_id("issue_key", issue_key)?;
        let template = self.active_template(tenant, template).await?;
        // A member the member service does not know gets nothing (MEMBER_NOT_FOUND).
        self.tier_of(tenant, member).await?;
        for _ in 0..CODE_ATTEMPTS {
            let coupon = self.new_coupon(&template, code::generate(""), Some(member), None);
            let new = self.keyed(tenant, coupon.clone(), issue_key.to_string());
            match self
                .store
                .add_coupons(tenant, vec![new], Vec::new())
                .await?
                .pop()
            {
                Some(Added::Yes) => return Ok(coupon),
                Some(Added::IssuedAlready(stored)) => return Ok(stored),
                // A collision in 2^58: draw again.
                Some(Added::CodeTaken) | None => continue,
            }
        }
        Err(ServiceError::unavailable(
            "could not draw a free coupon code: retry",
        ))
    }

    /// A member's coupon to add under `issue_key`, with its `coupon_issued` event, and its
    /// `coupon_expiring_soon` when it lapses within the notice from the start.
    fn keyed(&self, tenant: &TenantId, coupon: Coupon, issue_key: String) -> NewCoupon {
        let mut events = vec![self.issued_event(tenant, &coupon)];
        if self.announced_at_issue(&coupon) {
            events.push(self.expiring_event(tenant.as_str(), &coupon));
        }
        NewCoupon {
            coupon,
            issue_key: Some(issue_key),
            events,
        }
    }

    fn issued_event(&self, tenant: &TenantId, coupon: &Coupon) -> crate::events::CampaignEvent {
        self.event(
            tenant.as_str(),
            coupon.member.as_deref().unwrap_or_default(),
            "coupon_issued",
            &serde_json::json!({"code": coupon.code, "template": coupon.template,
                "valid_from_ms": coupon.valid_from_ms, "valid_until_ms": coupon.valid_until_ms}),
        )
    }

    /// Issues a coupon of `template` to every member of `segment` as of its last refresh,
    /// once per member for `issue_key`.
    pub async fn issue_to_segment(
        &self,
        tenant: &TenantId,
        template: &str,
        segment: &str,
        issue_key: &str,
    ) -> ServiceResult<Issued> {
        code::check_id("issue_key", issue_key)?;
        let template = self.active_template(tenant, template).await?;
        let mut issued = Issued::default();
        let mut cursor = String::new();
        loop {
            let (page, next) = self.segment_page(tenant, segment, &cursor).await?;
            let mut pending = Vec::with_capacity(page.len());
            for member in &page {
                let coupon = self.new_coupon(&template, code::generate(""), Some(member), None);
                pending.push(self.keyed(tenant, coupon, format!("{issue_key}:{member}")));
            }
            for _ in 0..CODE_ATTEMPTS {
                if pending.is_empty() {
                    break;
                }
                let outcomes = self
                    .store
                    .add_coupons(tenant, pending.clone(), Vec::new())
                    .await?;
                let mut retry = Vec::new();
                for (outcome, new) in outcomes.into_iter().zip(pending) {
                    match outcome {
                        Added::Yes => issued.added += 1,
                        Added::IssuedAlready(_) => issued.already += 1,
                        Added::CodeTaken => {
                            // Another code, and its events again.
                            let mut coupon = new.coupon;
                            coupon.code = code::generate("");
                            let key = new.issue_key.unwrap_or_default();
                            retry.push(self.keyed(tenant, coupon, key));
                        }
                    }
                }
                pending = retry;
            }
            if !pending.is_empty() {
                return Err(ServiceError::unavailable(
                    "could not draw free coupon codes: issue to the segment again",
                ));
            }
            if next.is_empty() {
                return Ok(issued);
            }
            cursor = next;
        }
    }

    /// Generates `count` bearer codes of `template` in batch `batch` (prefixed), in chunks,
    /// calling `progress` with the codes done so far. A batch run again with the same id
    /// and count finds the codes it made (by their place in the batch) and adds the rest.
    pub async fn generate(
        &self,
        tenant: &TenantId,
        template: &str,
        batch: &str,
        prefix: &str,
        count: usize,
        mut progress: impl FnMut(&[Coupon]) + Send,
    ) -> ServiceResult<Issued> {
        code::check_id("batch", batch)?;
        code::check_prefix(prefix)?;
        if !(1..=MAX_BATCH).contains(&count) {
            return Err(ServiceError::invalid(format!(
                "count: must be 1 to {MAX_BATCH}"
            )));
        }
        let template = self.active_template(tenant, template).await?;
        let mut issued = Issued::default();
        for start in (0..count).step_by(CHUNK) {
            let end = (start + CHUNK).min(count);
            let mut pending: Vec<NewCoupon> = code::generate_batch(prefix, end - start)
                .into_iter()
                .zip(start..end)
                .map(|(code, n)| NewCoupon {
                    coupon: self.new_coupon(&template, code, None, Some(batch)),
                    issue_key: Some(format!("batch:{batch}:{n}")),
                    events: Vec::new(),
                })
                .collect();
            let mut done = Vec::with_capacity(pending.len());
            for _ in 0..CODE_ATTEMPTS {
                if pending.is_empty() {
                    break;
                }
                let outcomes = self
                    .store
                    .add_coupons(tenant, pending.clone(), Vec::new())
                    .await?;
                let mut retry = Vec::new();
                for (outcome, mut new) in outcomes.into_iter().zip(pending) {
                    match outcome {
                        Added::Yes => {
                            issued.added += 1;
                            done.push(new.coupon);
                        }
                        Added::IssuedAlready(stored) => {
                            issued.already += 1;
                            done.push(stored);
                        }
                        Added::CodeTaken => {
                            new.coupon.code = code::generate(prefix);
                            retry.push(new);
                        }
                    }
                }
                pending = retry;
            }
            if !pending.is_empty() {
                return Err(ServiceError::unavailable(
                    "could not draw free coupon codes: run the batch again",
                ));
            }
            done.sort_by_key(|c| c.code.clone());
            progress(&done);
        }
        let event = self.event(
            tenant.as_str(),
            "",
            "coupons_generated",
            &serde_json::json!({"template": template.id, "batch": batch, "count": count,
                "added": issued.added}),
        );
        self.publish(tenant, vec![event]).await?;
        Ok(issued)
    }

    /// Imports codes printed elsewhere as bearer coupons of `template` in batch `batch`.
    /// A code imported before in the same batch counts as `already`; one the tenant holds
    /// otherwise is listed in `taken` and not imported.
    pub async fn import_codes(
        &self,
        tenant: &TenantId,
        template: &str,
        batch: &str,
        codes: &[String],
    ) -> ServiceResult<Issued> {
        code::check_id("batch", batch)?;
        if codes.len() > MAX_BATCH {
            return Err(ServiceError::invalid(format!(
                "codes: at most {MAX_BATCH} per import"
            )));
        }
        let template = self.active_template(tenant, template).await?;
        let normalized = codes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                code::normalize(c)
                    .map_err(|e| ServiceError::invalid(format!("codes[{i}]: {}", e.message)))
            })
            .collect::<ServiceResult<Vec<_>>>()?;
        let mut issued = Issued::default();
        for chunk in normalized.chunks(CHUNK) {
            let news: Vec<NewCoupon> = chunk
                .iter()
                .map(|code| NewCoupon {
                    coupon: self.new_coupon(&template, code.clone(), None, Some(batch)),
                    issue_key: Some(format!("import:{batch}:{code}")),
                    events: Vec::new(),
                })
                .collect();
            let outcomes = self.store.add_coupons(tenant, news, Vec::new()).await?;
            for (outcome, code) in outcomes.into_iter().zip(chunk) {
                match outcome {
                    Added::Yes => issued.added += 1,
                    Added::IssuedAlready(_) => issued.already += 1,
                    Added::CodeTaken => issued.taken.push(code.clone()),
                }
            }
        }
        let event = self.event(
            tenant.as_str(),
            "",
            "coupons_imported",
            &serde_json::json!({"template": template.id, "batch": batch,
                "added": issued.added, "taken": issued.taken.len()}),
        );
        self.publish(tenant, vec![event]).await?;
        Ok(issued)
    }

    /// The coupons a member holds, by code.
    pub async fn member_coupons(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<Coupon>> {
        self.store
            .member_coupons(tenant, member.as_str(), after, limit.clamp(1, 1_000))
            .await
    }

    /// A coupon by its code as typed or scanned.
    pub async fn coupon(&self, tenant: &TenantId, code: &str) -> ServiceResult<Coupon> {
        let code = code::normalize(code)?;
        self.store.coupon(tenant, &code).await?.ok_or_else(|| {
            ServiceError::new(
                ErrorCode::CouponNotFound,
                format!("no coupon {code} in this tenant"),
            )
        })
    }

    /// Writes events on their own (with no change beside them).
    async fn publish(
        &self,
        tenant: &TenantId,
        events: Vec<crate::events::CampaignEvent>,
    ) -> ServiceResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.store
            .add_coupons(tenant, Vec::new(), events)
            .await
            .map(drop)
    }
}
