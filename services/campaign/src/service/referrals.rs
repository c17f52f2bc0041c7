//! Referrals ([`crate::referral`]): a member's referral code, a referral recorded at the
//! referee's sign-up, and the member service's events that move it: the referee's first
//! order of at least the campaign's minimum rewards both sides (the referrer under its
//! cap), a refund of that order within the returns window takes both rewards back, and an
//! erasure drops the member's fingerprints.
//!
//! Each step is written first (the referral's state, with its event) and paid after, keyed:
//! a reward is a grant (`referred` for the referee, `referral-<referee>` for the referrer)
//! and a take-back a keyed ledger debit, so an event delivered again, or after a `kill -9`,
//! finds the step written and pays what is missing, once.

use super::Campaigns;
use super::grants::Rewarded;
use super::plans::not_found;
use super::triggers::is_rule;
use crate::campaign::variant::{Arm, arm};
use crate::campaign::{CampaignRecord, REFEREE, Reward, Trigger};
use crate::code;
use crate::referral::{CODE_PREFIX, Referral, ReferralMoved, ReferralState, Referred};
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_events::Envelope;
use loyalty_proto::ledger::v1 as ledger_pb;
use loyalty_proto::member::v1 as member_pb;

const DAY_MS: i64 = 86_400_000;
/// Codes drawn before giving up on a free one (a clash is about one in 10¹⁷).
const CODE_TRIES: usize = 5;

/// The referee's grant key, and the referrer's for one referee.
const REFEREE_KEY: &str = "referred";

fn referrer_key(referee: &str) -> String {
    format!("referral-{referee}")
}

impl Campaigns {
    /// The member's referral code, made on first asking. The member's fingerprints are
    /// kept as it asks, so an account it opens later with a phone, email or ID number it
    /// presents now cannot be its own referee.
    pub async fn referral_code(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<String> {
        let fingerprints = self.fingerprints(tenant, member).await?;
        self.store
            .remember_fingerprints(tenant, member.as_str(), &fingerprints)
            .await?;
        if let Some(code) = self.store.referral_code(tenant, member.as_str()).await? {
            return Ok(code);
        }
        for _ in 0..CODE_TRIES {
            let drawn = code::generate(CODE_PREFIX);
            if let Some(code) = self
                .store
                .claim_referral_code(tenant, member.as_str(), &drawn)
                .await?
            {
                return Ok(code);
            }
        }
        Err(ServiceError::unavailable(
            "no free referral code was drawn: retry",
        ))
    }

    /// Records that `referee`, a member who has not ordered yet, was referred in campaign
    /// `id` by the holder of `code`; the referral (the stored one when asked again).
    pub async fn refer(
        &self,
        tenant: &TenantId,
        id: &str,
        code: &str,
        referee: &MemberId,
    ) -> ServiceResult<Referral> {
        let code = code::normalize(code)?;
        let record = self
            .store
            .campaign(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if !matches!(record.campaign.trigger, Some(Trigger::Referral { .. })) {
            return Err(ServiceError::invalid(format!(
                "campaign: {id} is not a referral campaign (its trigger is not `referral`)"
            )));
        }
        let now = self.now_ms();
        let phase = record.phase(&record.campaign.schedule.resolve()?, now);
        if phase != "running" {
            return Err(ServiceError::new(
                ErrorCode::CampaignNotRunning,
                format!("campaign {id} is {phase}: referrals are recorded only while it runs"),
            ));
        }
        let referrer = self
            .store
            .code_holder(tenant, &code)
            .await?
            .ok_or_else(|| {
                ServiceError::new(
                    ErrorCode::ReferralCodeNotFound,
                    format!("no member holds referral code {code}"),
                )
            })?;
        let referrer = MemberId::parse(referrer.as_str())?;
        if &referrer == referee {
            return Err(self_referral(referee));
        }
        let mine = self.fingerprints(tenant, &referrer).await?;
        self.store
            .remember_fingerprints(tenant, referrer.as_str(), &mine)
            .await?;
        let theirs = self.fingerprints(tenant, referee).await?;
        let others = self
            .store
            .remember_fingerprints(tenant, referee.as_str(), &theirs)
            .await?;
        if others.iter().any(|o| o == referrer.as_str()) {
            return Err(self_referral(referee));
        }
        let referral = Referral {
            tenant: tenant.to_string(),
            campaign: id.to_string(),
            referrer: referrer.to_string(),
            referee: referee.to_string(),
            code,
            state: ReferralState::Pending,
            created_ms: now,
            updated_ms: now,
            order: None,
            order_ms: None,
            referrer_rewarded: false,
            taken_back: [0, 0],
        };
        if let Some(stored) = self.stored_referral(tenant, id, referee).await? {
            return same_referrer(stored, &referral);
        }
        if self.has_ordered(tenant, referee).await? {
            return Err(ServiceError::new(
                ErrorCode::ReferralNotEligible,
                format!("member {referee} has ordered already: a referee is a new member"),
            ));
        }
        let event = self.event(
            tenant.as_str(),
            referee.as_str(),
            "referral_recorded",
            &view(&referral),
        );
        match self.store.refer(&referral, vec![event]).await? {
            Referred::Yes => Ok(referral),
            Referred::Exists(stored) => same_referrer(*stored, &referral),
        }
    }

    /// The member's referrals as a referee, in every campaign.
    pub async fn referrals_of(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<Vec<Referral>> {
        self.store.referrals_of(tenant, member.as_str()).await
    }

    /// Moves the referrals a member-service event concerns: an order of a referee, a refund
    /// of its qualifying order, or an erasure.
    pub(super) async fn on_referral_event(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        event: &Envelope,
    ) -> ServiceResult<()> {
        if event.service() != "member" {
            return Ok(());
        }
        match event.name() {
            "erased" => {
                self.store
                    .forget_fingerprints(tenant, member.as_str())
                    .await
            }
            "order_recorded" => {
                let referrals = self.store.referrals_of(tenant, member.as_str()).await?;
                if referrals.is_empty() {
                    return Ok(());
                }
                let data = event.data_value();
                let at = data["at"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map_or(event.time.timestamp_millis(), |t| t.timestamp_millis());
                let order = Order {
                    id: data["order_id"].as_str().unwrap_or_default(),
                    at,
                    total: data["total"].as_i64().unwrap_or(0),
                    refund_of: data["refund_of"].as_str(),
                };
                for referral in referrals {
                    self.on_referee_order(tenant, referral, &order).await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn on_referee_order(
        &self,
        tenant: &TenantId,
        referral: Referral,
        order: &Order<'_>,
    ) -> ServiceResult<()> {
        let Some(record) = self.store.campaign(tenant, &referral.campaign).await? else {
            return Ok(());
        };
        let Some(Trigger::Referral {
            min_order,
            max_per_referrer,
            returns_days,
            ..
        }) = record.campaign.trigger
        else {
            return Ok(());
        };
        let (c, referee) = (referral.campaign.as_str(), referral.referee.as_str());
        let now = self.now_ms();
        match order.refund_of {
            None => {
                let running = record.phase(&record.campaign.schedule.resolve()?, now) == "running";
                let qualifies = order.total >= min_order && order.at >= referral.created_ms;
                if !(qualifies && running && referral.state == ReferralState::Pending
                    || referral.order.as_deref() == Some(order.id))
                {
                    return Ok(());
                }
                let mut qualified = referral.clone();
                (qualified.state, qualified.order) =
                    (ReferralState::Qualified, Some(order.id.to_string()));
                let data = view(&qualified);
                let event = self.event(tenant.as_str(), referee, "referral_qualified", &data);
                let moved = self
                    .store
                    .qualify_referral(
                        tenant,
                        c,
                        referee,
                        order.id,
                        order.at,
                        max_per_referrer,
                        now,
                        vec![event],
                    )
                    .await?;
                if let Some(r) = settled(moved, ReferralState::Qualified, order.id) {
                    self.pay_referral(tenant, &record, &r).await?;
                }
            }
            Some(original) => {
                let within = referral
                    .order_ms
                    .is_some_and(|ms| order.at <= ms + i64::from(returns_days) * DAY_MS);
                if referral.order.as_deref() != Some(original) || !within {
                    return Ok(());
                }
                let taken_back = match referral.state {
                    ReferralState::Qualified => {
                        self.to_take_back(tenant, &record, &referral).await?
                    }
                    _ => referral.taken_back,
                };
                let mut reversed = referral.clone();
                (reversed.state, reversed.taken_back) = (ReferralState::Reversed, taken_back);
                let data = view(&reversed);
                let event = self.event(tenant.as_str(), referee, "referral_reversed", &data);
                let moved = self
                    .store
                    .reverse_referral(tenant, c, referee, taken_back, now, vec![event])
                    .await?;
                if let Some(r) = settled(moved, ReferralState::Reversed, original) {
                    self.take_back(tenant, &r).await?;
                }
            }
        }
        Ok(())
    }

    /// Rewards a qualified referral's referee, and its referrer unless capped (grants
    /// keyed by the referral, so a second call pays nothing more).
    async fn pay_referral(
        &self,
        tenant: &TenantId,
        record: &CampaignRecord,
        r: &Referral,
    ) -> ServiceResult<()> {
        let now = self.now_ms();
        let referee = MemberId::parse(r.referee.as_str())?;
        let reward = record
            .campaign
            .reward_of(REFEREE)
            .ok_or_else(|| ServiceError::internal("a referral campaign without its reward"))?;
        let paid = self
            .grant_arm(
                tenant,
                record,
                &referee,
                (REFEREE_KEY, now),
                (REFEREE, &reward),
            )
            .await;
        ignore_rules(paid)?;
        if r.referrer_rewarded {
            let referrer = MemberId::parse(r.referrer.as_str())?;
            let key = referrer_key(&r.referee);
            // Referral campaigns hold no one out: every referrer is in a variant.
            if let Arm::Variant(v) = arm(&record.campaign, referrer.as_str()) {
                let paid = self
                    .grant_arm(tenant, record, &referrer, (&key, now), (&v.id, &v.reward))
                    .await;
                ignore_rules(paid)?;
            }
        }
        Ok(())
    }

    /// What a reversal takes back from (referrer, referee): the points each was paid, or
    /// what is left of them in the wallet when less is.
    async fn to_take_back(
        &self,
        tenant: &TenantId,
        record: &CampaignRecord,
        r: &Referral,
    ) -> ServiceResult<[i64; 2]> {
        let mut amounts = [0, 0];
        let sides = [
            (0, r.referrer.as_str(), referrer_key(&r.referee)),
            (1, r.referee.as_str(), REFEREE_KEY.to_string()),
        ];
        for (side, member, key) in sides {
            let Some(grant) = self
                .store
                .grant_of(tenant, &r.campaign, member, &key)
                .await?
            else {
                continue;
            };
            let paid = match record.campaign.reward_of(&grant.variant) {
                Some(Reward::Points { points }) if grant.paid_with.is_some() => points,
                _ => continue,
            };
            let left = self.points_available(tenant, member).await?;
            amounts[side] = paid.min(left.max(0));
        }
        Ok(amounts)
    }

    /// Debits what a reversed referral takes back, keyed by the referral and side.
    async fn take_back(&self, tenant: &TenantId, r: &Referral) -> ServiceResult<()> {
        let ledger = self.ledger("points are taken back")?;
        for (member, points) in [
            (&r.referrer, r.taken_back[0]),
            (&r.referee, r.taken_back[1]),
        ] {
            if points <= 0 {
                continue;
            }
            let adjust = ledger_pb::AdjustRequest {
                wallet: Some(ledger_pb::WalletRef {
                    tenant_id: tenant.to_string(),
                    member_id: member.clone(),
                }),
                idempotency_key: format!(
                    "referral-back-{}",
                    super::short_key(&[&r.campaign, &r.referee, member])
                ),
                points: -points,
                reason: format!(
                    "referral in campaign {} reversed: its order was refunded",
                    r.campaign
                ),
            };
            match ledger.adjust(adjust).await {
                Ok(_) => {}
                // Spent between the decision and the debit: what is gone stays gone.
                Err(e) if e.code == ErrorCode::InsufficientPoints => tracing::warn!(
                    campaign = %r.campaign, %member, points,
                    "a referral's reward was spent before it could be taken back"
                ),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn points_available(&self, tenant: &TenantId, member: &str) -> ServiceResult<i64> {
        let ledger = self.ledger("points are taken back")?;
        let balance = ledger
            .get_balance(ledger_pb::WalletRef {
                tenant_id: tenant.to_string(),
                member_id: member.to_string(),
            })
            .await?;
        Ok(balance.points_available)
    }

    async fn stored_referral(
        &self,
        tenant: &TenantId,
        campaign: &str,
        referee: &MemberId,
    ) -> ServiceResult<Option<Referral>> {
        Ok(self
            .store
            .referrals_of(tenant, referee.as_str())
            .await?
            .into_iter()
            .find(|r| r.campaign == campaign))
    }

    /// The member's fingerprints, from the member service.
    async fn fingerprints(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<Vec<String>> {
        let members = self.members.as_ref().ok_or_else(|| {
            ServiceError::unavailable("referrals read members from the member service: none is set")
        })?;
        let found = members
            .get_fingerprints(member_pb::MemberRef {
                tenant_id: tenant.to_string(),
                member_id: member.to_string(),
            })
            .await?;
        Ok(found.fingerprints)
    }

    async fn has_ordered(&self, tenant: &TenantId, member: &MemberId) -> ServiceResult<bool> {
        let activity = self.activity(tenant, member).await?;
        Ok(activity.is_some_and(|a| a.lifetime_orders > 0))
    }
}

/// The part of an `order_recorded` a referral reads.
struct Order<'a> {
    id: &'a str,
    at: i64,
    total: i64,
    refund_of: Option<&'a str>,
}

/// The referral a move left in `state` for `order`: moved now, or found so by an earlier
/// delivery (whose payment this one finishes).
fn settled(moved: ReferralMoved, state: ReferralState, order: &str) -> Option<Referral> {
    match moved {
        ReferralMoved::Yes(r) => Some(*r),
        ReferralMoved::NotFrom(r) if r.state == state && r.order.as_deref() == Some(order) => {
            Some(*r)
        }
        _ => None,
    }
}

/// A reward refused by the campaign's rules (its budget, a cap) is not a failure to retry.
fn ignore_rules(paid: ServiceResult<Rewarded>) -> ServiceResult<()> {
    match paid {
        Ok(_) => Ok(()),
        Err(e) if is_rule(e.code) => Ok(()),
        Err(e) => Err(e),
    }
}

fn self_referral(referee: &MemberId) -> ServiceError {
    ServiceError::new(
        ErrorCode::SelfReferral,
        format!(
            "member {referee} cannot be referred by this code: it is its holder, or shares a \
             phone, email or ID number the holder presented"
        ),
    )
}

/// A referral asked for again: the stored one if it has the same referrer, else a conflict.
fn same_referrer(stored: Referral, asked: &Referral) -> ServiceResult<Referral> {
    if stored.referrer == asked.referrer {
        Ok(stored)
    } else {
        Err(ServiceError::new(
            ErrorCode::ReferralExists,
            format!(
                "member {} was referred in campaign {} by another member already",
                asked.referee, asked.campaign
            ),
        ))
    }
}

/// A referral as events and the API show it.
pub fn view(r: &Referral) -> serde_json::Value {
    serde_json::json!({"campaign": r.campaign, "referrer": r.referrer, "referee": r.referee,
        "code": r.code, "state": r.state, "created_ms": r.created_ms, "order": r.order,
        "order_ms": r.order_ms, "referrer_rewarded": r.referrer_rewarded,
        "taken_back": {"referrer": r.taken_back[0], "referee": r.taken_back[1]}})
}
