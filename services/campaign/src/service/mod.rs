//! The campaign service object, [`Campaigns`]: coupon templates ([`templates`]), issuing
//! codes to members, segments and batches ([`issue`]), the till's cart evaluation and
//! redemptions ([`redeem`]) with their bonus points paid through the ledger ([`payouts`]),
//! flash sales ([`sales`]), campaigns ([`plans`], [`grants`], [`broadcast`], [`triggers`],
//! [`birthdays`], [`referrals`], [`check_ins`]) and their effectiveness ([`results`]), and the scheduled sweeps
//! ([`sweeps`]). Its in-process client
//! wraps it; its gRPC server calls that client.

pub mod birthdays;
pub mod broadcast;
pub mod check_ins;
pub mod draws;
pub mod grants;
pub mod issue;
pub mod mall;
pub mod mall_orders;
pub mod mall_refunds;
mod outbox_readers;
pub mod payouts;
pub mod plans;
pub mod redeem;
pub mod referrals;
mod regions;
pub mod results;
pub mod sales;
pub mod sweeps;
pub mod templates;
pub mod triggers;

use crate::events::CampaignEvent;
use crate::store::CampaignRepository;
use loyalty_common::clock::{Clock, SystemClock};
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_ledger::client::LedgerClient;
use loyalty_member::client::MemberClient;
use loyalty_proto::ledger::v1 as ledger_pb;
use loyalty_proto::member::v1 as member_pb;
use loyalty_region::background::SharedView;
use serde::Serialize;
use std::sync::Arc;

/// A short key made of `parts` (32 hex characters of their SHA-256, joined by newlines),
/// for the idempotency keys this service hands the ledger and its own issues: those take
/// only a few characters, fewer than ids and codes may hold together.
fn short_key(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(parts.join("\n"))[..16])
}

/// Runs `write` (a credit or debit of `wallet`) in the ledger; a credit to a member the
/// ledger has no wallet for yet opens the wallet first (opening is idempotent in the ledger,
/// whatever its key) and tries again. A debit of a wallet that does not exist is refused as
/// the ledger refuses it.
async fn opening<F, Fut>(
    ledger: &dyn LedgerClient,
    (wallet, key, credit): (&ledger_pb::WalletRef, &str, bool),
    write: F,
) -> ServiceResult<ledger_pb::WriteResult>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ServiceResult<ledger_pb::WriteResult>>,
{
    match write().await {
        Err(e) if e.code == ErrorCode::WalletNotFound && credit => {
            let open = ledger_pb::OpenWalletRequest {
                wallet: Some(wallet.clone()),
                idempotency_key: format!("open-{key}"),
            };
            ledger.open_wallet(open).await?;
            write().await
        }
        other => other,
    }
}

/// Adjusts points in the ledger, opening the wallet for a credit ([`opening`]).
async fn adjust_opening(
    ledger: &dyn LedgerClient,
    adjust: ledger_pb::AdjustRequest,
) -> ServiceResult<ledger_pb::WriteResult> {
    let wallet = adjust.wallet.clone().unwrap_or_default();
    let at = (&wallet, adjust.idempotency_key.as_str(), adjust.points > 0);
    opening(ledger, at, || ledger.adjust(adjust.clone())).await
}

/// Gives (or takes back) bonus stored value in the ledger, opening the wallet for a credit
/// ([`opening`]).
async fn adjust_bonus_opening(
    ledger: &dyn LedgerClient,
    adjust: ledger_pb::AdjustBonusValueRequest,
) -> ServiceResult<ledger_pb::WriteResult> {
    let wallet = adjust.wallet.clone().unwrap_or_default();
    let at = (&wallet, adjust.idempotency_key.as_str(), adjust.amount > 0);
    opening(ledger, at, || ledger.adjust_bonus_value(adjust.clone())).await
}

/// How many days before a member's coupon lapses the member hears of it, unless set.
pub const DEFAULT_EXPIRING_NOTICE_DAYS: i64 = 3;

/// The campaign service.
pub struct Campaigns {
    store: Arc<dyn CampaignRepository>,
    clock: Arc<dyn Clock>,
    /// Where tiers and segments are read; without it no member has a tier and segments
    /// cannot be issued to.
    members: Option<Arc<dyn MemberClient>>,
    /// Where bonus points are paid ([`payouts`]); without it none are.
    ledger: Option<Arc<dyn LedgerClient>>,
    /// How long before a member's coupon lapses the member hears of it ([`sweeps`]).
    expiring_notice_ms: i64,
    /// How long a mall order or draw entry cut short waits before the sweep undoes it.
    saga_grace_ms: i64,
    /// In two regions, which tenants' background work (outbox readers, sweeps, triggers) is
    /// this region's ([`regions`]); None in one region, where all of it is.
    regions: Option<SharedView>,
}

impl Campaigns {
    pub fn new(store: Arc<dyn CampaignRepository>, members: Option<Arc<dyn MemberClient>>) -> Self {
        Self::with_clock(store, members, Arc::new(SystemClock::default()))
    }

    pub fn with_clock(
        store: Arc<dyn CampaignRepository>,
        members: Option<Arc<dyn MemberClient>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            clock,
            members,
            ledger: None,
            expiring_notice_ms: DEFAULT_EXPIRING_NOTICE_DAYS * 86_400_000,
            saga_grace_ms: sweeps::RECOVERY_GRACE_MS,
            regions: None,
        }
    }

    /// The same service, undoing mall orders and draw entries cut short once they are
    /// `secs` old (at least one second). A retry with the same id within that time finishes
    /// them instead; an undo that races a request still running stays consistent (the hold
    /// is found by its key and given back), but the request then answers with the failed
    /// order, so keep it well above the callers' deadlines.
    pub fn with_saga_grace(mut self, secs: u64) -> Self {
        let secs = i64::try_from(secs.max(1)).unwrap_or(i64::MAX / 1_000);
        self.saga_grace_ms = secs.saturating_mul(1_000);
        self
    }

    /// The same service, announcing members' coupons `days` before they lapse.
    pub fn with_expiring_notice(mut self, days: u32) -> Self {
        self.expiring_notice_ms = i64::from(days) * 86_400_000;
        self
    }

    /// The same service in one of two regions: it does the background work of the tenants
    /// homed in this region only, as `view` says.
    pub fn with_regions(mut self, view: SharedView) -> Self {
        self.regions = Some(view);
        self
    }

    /// The same service, paying bonus points through `ledger`.
    pub fn with_ledger(mut self, ledger: Arc<dyn LedgerClient>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    pub fn repository(&self) -> &Arc<dyn CampaignRepository> {
        &self.store
    }

    /// Now, by the service's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now().0
    }

    /// A new event stamped now.
    fn event(
        &self,
        tenant: &str,
        member: &str,
        name: &str,
        data: &impl Serialize,
    ) -> CampaignEvent {
        CampaignEvent::new(
            self.clock.new_ulid().to_string(),
            tenant,
            member,
            name,
            self.clock.now(),
            data,
        )
    }

    /// One page of a segment's members (as of its last refresh), and the cursor of the
    /// next (empty at the end).
    async fn segment_page(
        &self,
        tenant: &TenantId,
        segment: &str,
        cursor: &str,
    ) -> ServiceResult<(Vec<MemberId>, String)> {
        let members = self.members.as_ref().ok_or_else(|| {
            loyalty_common::ServiceError::unavailable(
                "segments are read from the member service, which is not configured",
            )
        })?;
        let page = members
            .list_segment_members(member_pb::ListSegmentMembersRequest {
                tenant_id: tenant.to_string(),
                segment_code: segment.to_string(),
                cursor: cursor.to_string(),
                limit: 1_000,
            })
            .await?;
        let ids = page
            .member_ids
            .iter()
            .map(|m| MemberId::parse(m.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((ids, page.next_cursor))
    }

    /// What the member did, as the member service has it (None without a member service).
    async fn activity(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<Option<member_pb::Activity>> {
        let Some(members) = &self.members else {
            return Ok(None);
        };
        let reference = member_pb::MemberRef {
            tenant_id: tenant.to_string(),
            member_id: member.to_string(),
        };
        Ok(Some(members.get_activity(reference).await?))
    }

    /// The ledger client, for `what` the service pays or takes back through it.
    fn ledger(&self, what: &str) -> ServiceResult<&dyn LedgerClient> {
        self.ledger.as_deref().ok_or_else(|| {
            loyalty_common::ServiceError::unavailable(format!(
                "{what} through the ledger: none is set"
            ))
        })
    }

    /// The member's tier as the member service has it (None without one, or without the
    /// member service); `MEMBER_NOT_FOUND` for a member it does not know.
    async fn tier_of(&self, tenant: &TenantId, member: &MemberId) -> ServiceResult<Option<String>> {
        let Some(members) = &self.members else {
            return Ok(None);
        };
        let tier = members
            .get_member_tier(member_pb::MemberRef {
                tenant_id: tenant.to_string(),
                member_id: member.to_string(),
            })
            .await?;
        Ok(Some(tier.tier).filter(|t| !t.is_empty()))
    }
}
