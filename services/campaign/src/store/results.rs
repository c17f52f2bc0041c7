//! The results half of the campaign store's port: each campaign's counters per arm, moved by
//! facts that count once each, and the links (a member, a coupon, an order to an arm of a
//! campaign) that let later facts find their campaign.

use crate::campaign::results::{Counts, Link, Tally};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use std::collections::BTreeMap;

#[async_trait]
pub trait ResultRepository: Send + Sync + 'static {
    /// Keeps `tally`'s links, then adds each of its facts to its arm's counters, once per
    /// fact key in the campaign (and only if the fact it comes `after` was counted), all
    /// facts at once; how many facts were counted now.
    async fn tally(&self, tenant: &TenantId, tally: &Tally) -> ServiceResult<usize>;
    /// The campaign's counters by arm (none before its first fact).
    async fn results(
        &self,
        tenant: &TenantId,
        campaign: &str,
    ) -> ServiceResult<BTreeMap<String, Counts>>;
    /// The links of `of` (`member:<id>`, `coupon:<code>`, `order:<id>`), by campaign and
    /// time.
    async fn links(&self, tenant: &TenantId, of: &str) -> ServiceResult<Vec<Link>>;
}
