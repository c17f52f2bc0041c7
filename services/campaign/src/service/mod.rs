//! The campaign service object, [`Campaigns`]: coupon templates ([`templates`]), issuing
//! codes to members, segments and batches ([`issue`]), the till's cart evaluation and
//! redemptions ([`redeem`]) with their bonus points paid through the ledger ([`payouts`]),
//! flash sales ([`sales`]), and the scheduled sweeps ([`sweeps`]). Its in-process client
//! wraps it; its gRPC server calls that client.

pub mod birthdays;
pub mod broadcast;
pub mod grants;
pub mod issue;
pub mod payouts;
pub mod plans;
pub mod redeem;
pub mod sales;
pub mod sweeps;
pub mod templates;
pub mod triggers;

use crate::events::CampaignEvent;
use crate::store::CampaignRepository;
use loyalty_common::clock::{Clock, SystemClock};
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_ledger::client::LedgerClient;
use loyalty_member::client::MemberClient;
use loyalty_proto::member::v1 as member_pb;
use serde::Serialize;
use std::sync::Arc;

/// The campaign service.
pub struct Campaigns {
    store: Arc<dyn CampaignRepository>,
    clock: Arc<dyn Clock>,
    /// Where tiers and segments are read; without it no member has a tier and segments
    /// cannot be issued to.
    members: Option<Arc<dyn MemberClient>>,
    /// Where bonus points are paid ([`payouts`]); without it none are.
    ledger: Option<Arc<dyn LedgerClient>>,
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
        }
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
