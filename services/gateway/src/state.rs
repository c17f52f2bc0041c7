//! Shared handler state: the clients of the services the gateway calls. Each is the service
//! in this process or one in another, behind the same trait; handlers cannot tell which.

use loyalty_campaign::client::CampaignClient;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_identity::client::IdentityClient;
use loyalty_ledger::client::LedgerClient;
use loyalty_member::client::MemberClient;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    ledger: Arc<dyn LedgerClient>,
    identity: Arc<dyn IdentityClient>,
    members: Arc<dyn MemberClient>,
    campaigns: Option<Arc<dyn CampaignClient>>,
}

impl AppState {
    pub fn new(
        ledger: Arc<dyn LedgerClient>,
        identity: Arc<dyn IdentityClient>,
        members: Arc<dyn MemberClient>,
    ) -> Self {
        Self {
            ledger,
            identity,
            members,
            campaigns: None,
        }
    }

    /// With the campaign service's client (without it the coupon routes answer 503).
    pub fn with_campaigns(mut self, campaigns: Arc<dyn CampaignClient>) -> Self {
        self.campaigns = Some(campaigns);
        self
    }

    /// The campaign service's client.
    pub fn campaigns(&self) -> ServiceResult<&dyn CampaignClient> {
        self.campaigns.as_deref().ok_or_else(|| {
            ServiceError::unavailable(
                "this gateway has no campaign service: set campaign_endpoint, or run --target all",
            )
        })
    }

    /// The member service's client.
    pub fn members(&self) -> &dyn MemberClient {
        self.members.as_ref()
    }

    /// The identity service's client: the checks of every request, sessions, administration.
    pub fn identity(&self) -> &Arc<dyn IdentityClient> {
        &self.identity
    }

    /// The ledger's client.
    pub fn ledger(&self) -> &dyn LedgerClient {
        self.ledger.as_ref()
    }
}
