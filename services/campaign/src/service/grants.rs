//! Rewarding members from a running campaign: each reward is a grant that reserves its units
//! of the budget and its place under the member's cap in one write, is paid (a coupon issued,
//! points adjusted in the ledger, both keyed by the grant so a retry pays once), then
//! confirmed, or released when the payment is refused. A grant cut short by a crash or a
//! ledger that was down stays reserved and is paid and confirmed by the sweep
//! ([`Campaigns::recover_grants`]). Members in the holdout get nothing; their grant is
//! written held out, so they are counted in the results as the baseline.

use super::Campaigns;
use super::plans::not_found;
use crate::campaign::grant::{Grant, GrantState};
use crate::campaign::results::HOLDOUT;
use crate::campaign::variant::{Arm, arm};
use crate::campaign::{Actions, Audience, Campaign, CampaignRecord, Reward};
use crate::code;
use crate::store::{GrantSettled, Granted};
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_proto::ledger::v1 as ledger_pb;
use loyalty_proto::member::v1 as member_pb;

/// A grant left reserved this long is taken for cut short by the sweep.
const RECOVERY_GRACE_MS: i64 = 60_000;
/// Grants handled per store call by the sweep.
const PAGE: usize = 500;

/// What a reward came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewarded {
    /// The grant, confirmed (or as an earlier call with its key left it).
    Granted(Box<Grant>),
    /// The member is in the holdout: nothing given, by design.
    Holdout,
}

impl Campaigns {
    /// Rewards `member` from campaign `id` once for `key` (the caller's idempotency key for
    /// this member, e.g. a trigger and a period: `birthday-2027`). The campaign must be running and the member in
    /// its audience; the budget and the member's cap are checked with the grant, in one write.
    pub async fn reward(
        &self,
        tenant: &TenantId,
        id: &str,
        member: &MemberId,
        key: &str,
    ) -> ServiceResult<Rewarded> {
        code::check_id("campaign", id)?;
        code::check_id("key", key)?;
        if let Some(stored) = self
            .store
            .grant_of(tenant, id, member.as_str(), key)
            .await?
        {
            return self.finish(stored).await;
        }
        let record = self
            .store
            .campaign(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let now = self.now_ms();
        let window = record.campaign.schedule.resolve()?;
        if record.phase(&window, now) != "running" {
            return Err(ServiceError::new(
                ErrorCode::CampaignNotRunning,
                format!(
                    "campaign {id} is {}: members are rewarded only while it runs",
                    record.phase(&window, now)
                ),
            ));
        }
        if let Audience::Segment { .. } = record.campaign.audience {
            return Err(ServiceError::invalid(
                "campaign: a segment's campaign rewards the segment's members by its \
                 broadcast, not one by one",
            ));
        }
        self.check_audience(tenant, &record.campaign, member)
            .await?;
        self.grant_to(tenant, &record, member, key, now).await
    }

    /// Reserves, pays and confirms one grant for a member already known to be in the
    /// audience of the running campaign `record`.
    pub(super) async fn grant_to(
        &self,
        tenant: &TenantId,
        record: &CampaignRecord,
        member: &MemberId,
        key: &str,
        now: i64,
    ) -> ServiceResult<Rewarded> {
        let campaign = &record.campaign;
        let Arm::Variant(variant) = arm(campaign, member.as_str()) else {
            return self.hold_out(tenant, campaign, member, key, now).await;
        };
        self.grant_arm(
            tenant,
            record,
            member,
            (key, now),
            (&variant.id, &variant.reward),
        )
        .await
    }

    /// Reserves, pays and confirms one grant of `reward` in arm `arm` (a variant, or a
    /// referral's referee) under `key` at `now`.
    pub(super) async fn grant_arm(
        &self,
        tenant: &TenantId,
        record: &CampaignRecord,
        member: &MemberId,
        (key, now): (&str, i64),
        (arm, reward): (&str, &Reward),
    ) -> ServiceResult<Rewarded> {
        let campaign = &record.campaign;
        let period = match campaign.frequency_cap.and_then(|c| c.per_days) {
            Some(days) => {
                let day = campaign.schedule.local_day(now)?;
                format!("d{}", day - day.rem_euclid(i64::from(days)))
            }
            None => "all".to_string(),
        };
        let grant = Grant {
            tenant: tenant.to_string(),
            campaign: campaign.id.clone(),
            key: key.to_string(),
            member: member.to_string(),
            variant: arm.to_string(),
            units: Campaign::units(reward),
            period,
            state: GrantState::Reserved,
            created_ms: now,
            updated_ms: now,
            paid_with: None,
        };
        let cap = campaign.frequency_cap.map(|c| c.times);
        match self.store.grant(&grant, cap, Vec::new()).await? {
            Granted::Yes => self.finish(grant).await,
            Granted::Exists(stored) => self.finish(*stored).await,
            Granted::BudgetExhausted => Err(ServiceError::new(
                ErrorCode::BudgetExhausted,
                format!("campaign {} has too little budget left", campaign.id),
            )),
            Granted::CapReached => Err(ServiceError::new(
                ErrorCode::FrequencyCapReached,
                format!(
                    "member {member} was rewarded by campaign {} as often as it allows",
                    campaign.id
                ),
            )),
            Granted::NoCampaign => Err(not_found(&campaign.id)),
        }
    }

    /// Records that the holdout keeps `member` out of `campaign` under `key`: a grant held
    /// out at once, taking no budget, published (`campaign_held_out`) and counted in the
    /// campaign's results as the baseline its variants are measured against.
    async fn hold_out(
        &self,
        tenant: &TenantId,
        campaign: &Campaign,
        member: &MemberId,
        key: &str,
        now: i64,
    ) -> ServiceResult<Rewarded> {
        let grant = Grant {
            tenant: tenant.to_string(),
            campaign: campaign.id.clone(),
            key: key.to_string(),
            member: member.to_string(),
            variant: HOLDOUT.to_string(),
            units: 0,
            period: "all".to_string(),
            state: GrantState::HeldOut,
            created_ms: now,
            updated_ms: now,
            paid_with: None,
        };
        let data = serde_json::json!({"campaign": campaign.id, "key": key, "variant": HOLDOUT});
        let event = self.event(tenant.as_str(), member.as_str(), "campaign_held_out", &data);
        match self.store.grant(&grant, None, vec![event]).await? {
            Granted::Yes => Ok(Rewarded::Holdout),
            Granted::Exists(stored) => self.finish(*stored).await,
            Granted::NoCampaign => Err(not_found(&campaign.id)),
            Granted::BudgetExhausted | Granted::CapReached => Err(ServiceError::internal(
                "a held-out grant takes no budget and no cap",
            )),
        }
    }

    /// Pays a reserved grant and confirms it (a released or confirmed one is answered as
    /// it is); a refused payment releases it, a failed one leaves it for the sweep.
    async fn finish(&self, grant: Grant) -> ServiceResult<Rewarded> {
        if grant.state != GrantState::Reserved {
            return match grant.state {
                GrantState::Confirmed => Ok(Rewarded::Granted(Box::new(grant))),
                GrantState::HeldOut => Ok(Rewarded::Holdout),
                _ => Err(ServiceError::new(
                    ErrorCode::CampaignNotRunning,
                    format!(
                        "grant {} was released: its reward could not be paid",
                        grant.key
                    ),
                )),
            };
        }
        let tenant = TenantId::parse(grant.tenant.as_str())?;
        let record = self
            .store
            .campaign(&tenant, &grant.campaign)
            .await?
            .ok_or_else(|| not_found(&grant.campaign))?;
        let reward = record
            .campaign
            .reward_of(&grant.variant)
            .ok_or_else(|| ServiceError::internal("a grant of a variant that is gone"))?;
        let paid = match self.pay(&tenant, &grant, &reward).await {
            Ok(paid_with) => self
                .tag(&tenant, &grant, &record.campaign.actions)
                .await
                .map(|()| paid_with),
            Err(e) => Err(e),
        };
        let (to, paid_with, failure) = match paid {
            Ok(paid_with) => (GrantState::Confirmed, Some(paid_with), None),
            Err(e) if is_refusal(e.code) => (GrantState::Released, None, Some(e)),
            Err(e) => return Err(e),
        };
        let name = match to {
            GrantState::Confirmed => "campaign_rewarded",
            _ => "campaign_reward_released",
        };
        let data = serde_json::json!({"campaign": grant.campaign, "key": grant.key,
            "variant": grant.variant, "reward": reward, "units": grant.units,
            "paid_with": paid_with});
        let mut events = vec![self.event(&grant.tenant, &grant.member, name, &data)];
        if let (GrantState::Confirmed, Some(notify)) = (to, &record.campaign.actions.notify) {
            let ask = serde_json::json!({"campaign": grant.campaign, "key": grant.key,
                "variant": grant.variant, "template": notify.template,
                "channels": notify.channels, "reward": reward, "paid_with": paid_with});
            let name = "campaign_notification_requested";
            events.push(self.event(&grant.tenant, &grant.member, name, &ask));
        }
        let now = self.now_ms();
        let settled = self
            .store
            .settle_grant(
                &tenant,
                &grant.campaign,
                &grant.member,
                &grant.key,
                to,
                now,
                paid_with,
                events,
            )
            .await?;
        let grant = match settled {
            GrantSettled::Yes(g) | GrantSettled::NotFrom(g) => g,
            GrantSettled::Missing => return Err(ServiceError::internal("a grant that is gone")),
        };
        match failure {
            Some(e) => Err(e),
            None => Ok(Rewarded::Granted(grant)),
        }
    }

    /// Pays `grant`'s reward, keyed by the grant; what paid it (a code, a ledger entry).
    async fn pay(
        &self,
        tenant: &TenantId,
        grant: &Grant,
        reward: &Reward,
    ) -> ServiceResult<String> {
        let member = MemberId::parse(grant.member.as_str())?;
        let key = format!("campaign-{}", grant_digest(grant));
        let wallet = Some(ledger_pb::WalletRef {
            tenant_id: grant.tenant.clone(),
            member_id: grant.member.clone(),
        });
        let reason = format!("campaign {}", grant.campaign);
        let written = match reward {
            Reward::Coupon { template } => {
                return Ok(self.issue(tenant, template, &member, &key).await?.code);
            }
            Reward::Points { points } => {
                let adjust = ledger_pb::AdjustRequest {
                    wallet,
                    idempotency_key: key,
                    points: *points,
                    reason,
                };
                super::adjust_opening(self.ledger("points are paid")?, adjust).await?
            }
            Reward::StoredValue { amount } => {
                let adjust = ledger_pb::AdjustBonusValueRequest {
                    wallet,
                    idempotency_key: key,
                    amount: *amount,
                    reason,
                };
                let ledger = self.ledger("stored value is given")?;
                super::adjust_bonus_opening(ledger, adjust).await?
            }
        };
        Ok(written
            .entries
            .first()
            .map(|e| e.entry_id.clone())
            .unwrap_or_default())
    }

    /// Adds the campaign's tag to the grant's member, if it has one (adding a tag the member
    /// has changes nothing, so a retry is harmless).
    async fn tag(&self, tenant: &TenantId, grant: &Grant, actions: &Actions) -> ServiceResult<()> {
        let Some(tag) = &actions.tag else {
            return Ok(());
        };
        let members = self.members.as_ref().ok_or_else(|| {
            ServiceError::unavailable("tags are added through the member service: none is set")
        })?;
        members
            .tag_member(member_pb::TagMemberRequest {
                member: Some(member_pb::MemberRef {
                    tenant_id: tenant.to_string(),
                    member_id: grant.member.clone(),
                }),
                add: vec![tag.clone()],
                remove: Vec::new(),
            })
            .await
            .map(|_| ())
    }

    /// Pays and confirms (or releases) grants left reserved for a minute or more; how many.
    pub async fn recover_grants(&self) -> ServiceResult<u64> {
        let mut done = 0;
        let stuck = self
            .store
            .reserved_grants(self.now_ms() - RECOVERY_GRACE_MS, PAGE)
            .await?;
        for grant in stuck {
            if !self.works_here(grant.tenant.as_str()) {
                continue;
            }
            match self.finish(grant).await {
                Ok(_) => done += 1,
                Err(e) if is_refusal(e.code) => done += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Whether `member` is in the audience of `campaign` (everyone, tiers or tags), as the
    /// member service has the member now.
    pub(super) async fn check_audience(
        &self,
        tenant: &TenantId,
        campaign: &Campaign,
        member: &MemberId,
    ) -> ServiceResult<()> {
        let wanted = match &campaign.audience {
            Audience::Everyone | Audience::Segment { .. } => return Ok(()),
            Audience::Tiers { tiers } => tiers,
            Audience::Tags { tags } => tags,
        };
        let members = self.members.as_ref().ok_or_else(|| {
            ServiceError::unavailable(
                "tiers and tags are read from the member service: none is set",
            )
        })?;
        let profile = members
            .get_profile(member_pb::MemberRef {
                tenant_id: tenant.to_string(),
                member_id: member.to_string(),
            })
            .await?;
        let holds = match &campaign.audience {
            Audience::Tiers { .. } => wanted.contains(&profile.tier),
            _ => profile.tags.iter().any(|t| wanted.contains(t)),
        };
        if holds {
            Ok(())
        } else {
            Err(ServiceError::new(
                ErrorCode::NotInAudience,
                format!(
                    "member {member} is not in campaign {}'s audience",
                    campaign.id
                ),
            ))
        }
    }
}

/// The grant as a short key for the ledger and the coupon issue (which take only a few
/// characters, fewer than a campaign, a member and a key may hold).
fn grant_digest(grant: &Grant) -> String {
    super::short_key(&[&grant.campaign, &grant.member, &grant.key])
}

/// Refusals of a payment that trying again cannot change: the grant is released.
fn is_refusal(code: ErrorCode) -> bool {
    !matches!(code, ErrorCode::Unavailable | ErrorCode::Internal)
}
