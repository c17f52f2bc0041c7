//! The time indexes the sweeps read: members' coupons by when they lapse (sharded by day),
//! and things due for a look: held redemptions and flash-sale claims by when their hold
//! lapses, sagas by when they started, campaigns' reserved grants by when they were made.
//! Each is written before what it points at, and a pointer to nothing is skipped.

use super::ScyllaCampaignStore;
use crate::coupon::Coupon;
use crate::store::ExpiryCursor;
use loyalty_common::error::ServiceResult;

/// Held redemptions, by when the hold lapses.
pub const HOLDS: &str = "hold";
/// Redemption sagas, by when they started.
pub const SAGAS: &str = "saga";
/// Held flash-sale claims, by when the hold lapses.
pub const CLAIM_HOLDS: &str = "claim_hold";
/// Campaigns' reserved grants, by when they were made.
pub const RESERVED_GRANTS: &str = "grant";
/// The mall's pending and placed orders, by when they are due.
pub const MALL_ORDERS: &str = "mall_order";
/// Lucky-draw entries drawn and not yet paid, by when they are due.
pub const DRAW_ENTRIES: &str = "draw_entry";
/// Shards of a day of lapsing coupons, so a segment's coupons are not one partition.
const EXPIRY_SHARDS: i32 = 8;
/// How far back the due index is read: a hold or saga older than this was seen already by
/// a sweep (they run every few seconds), unless every replica was down that long.
const DUE_DAYS_BACK: i32 = 30;
/// The most days one lapsing read walks (the sweep asks for a few).
const MAX_LAPSING_DAYS: i32 = 400;
const DAY_MS: i64 = 86_400_000;

fn day(ms: i64) -> i32 {
    i32::try_from(ms.div_euclid(DAY_MS)).unwrap_or(0)
}

/// A coupon's place in the expiry index (see the schema): time, tenant, code.
fn pos(until_ms: i64, tenant: &str, code: &str) -> String {
    format!("{:016x} {tenant} {code}", until_ms.max(0))
}

fn shard(code: &str) -> i32 {
    let hash = code
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    i32::try_from(hash % EXPIRY_SHARDS.unsigned_abs()).unwrap_or(0)
}

impl ScyllaCampaignStore {
    pub(super) async fn add_expiry(&self, tenant: &str, coupon: &Coupon) -> ServiceResult<()> {
        let until = coupon.valid_until_ms;
        self.statements
            .expiry_add
            .run(
                self.session(),
                (
                    day(until),
                    shard(&coupon.code),
                    pos(until, tenant, &coupon.code),
                    tenant.to_string(),
                    coupon.code.clone(),
                ),
            )
            .await
    }

    /// (tenant, code) of members' coupons after `after` lapsing by `until_ms`, in cursor
    /// order, at most `limit`.
    pub(super) async fn lapsing(
        &self,
        after: &ExpiryCursor,
        until_ms: i64,
        limit: usize,
    ) -> ServiceResult<Vec<(String, String)>> {
        let mut found: Vec<(String, String, String)> = Vec::new();
        let start = pos(after.until_ms, &after.tenant, &after.code);
        // '~' sorts after every character of an id or a code.
        let end = format!("{:016x}~", until_ms.max(0));
        let first = day(after.until_ms.max(0));
        let last = day(until_ms).min(first + MAX_LAPSING_DAYS);
        let page = i32::try_from(limit).unwrap_or(i32::MAX);
        for d in first..=last {
            let mut today = Vec::new();
            for shard in 0..EXPIRY_SHARDS {
                let binds = (d, shard, start.clone(), end.clone(), page);
                today.extend(
                    self.statements
                        .expiry_after
                        .rows(self.session(), binds)
                        .await?,
                );
            }
            today.sort();
            found.extend(today);
            if found.len() >= limit {
                break;
            }
        }
        found.truncate(limit);
        Ok(found
            .into_iter()
            .map(|(_, tenant, code)| (tenant, code))
            .collect())
    }

    pub(super) async fn due_add(
        &self,
        what: &str,
        at: i64,
        tenant: &str,
        id: &str,
    ) -> ServiceResult<()> {
        self.statements
            .due_add
            .run(
                self.session(),
                (
                    what.to_string(),
                    day(at),
                    at,
                    tenant.to_string(),
                    id.to_string(),
                ),
            )
            .await
    }

    pub(super) async fn due_remove(
        &self,
        what: &str,
        at: i64,
        tenant: &str,
        id: &str,
    ) -> ServiceResult<()> {
        self.statements
            .due_remove
            .run(
                self.session(),
                (
                    what.to_string(),
                    day(at),
                    at,
                    tenant.to_string(),
                    id.to_string(),
                ),
            )
            .await
    }

    /// (when, tenant, id) due before `before_ms`, oldest first, at most `limit`.
    pub(super) async fn due_before(
        &self,
        what: &str,
        before_ms: i64,
        limit: usize,
    ) -> ServiceResult<Vec<(i64, String, String)>> {
        let mut found = Vec::new();
        let last = day(before_ms);
        for d in (last - DUE_DAYS_BACK)..=last {
            let left = limit.saturating_sub(found.len());
            if left == 0 {
                break;
            }
            let binds = (
                what.to_string(),
                d,
                before_ms,
                i32::try_from(left).unwrap_or(i32::MAX),
            );
            found.extend(
                self.statements
                    .due_before
                    .rows(self.session(), binds)
                    .await?,
            );
        }
        Ok(found)
    }
}
