//! Referrals on ScyllaDB. A referral code is an entity (`refcode:<code>`, its holder the
//! body) created once; the member's own code is another (`refmember:<id>`), created after
//! it, so a member keeps the first code it claimed. Fingerprints are listings both ways
//! (`fp:<fingerprint>` names members, `fps:<member>` names fingerprints).
//!
//! A referee's place in a campaign is an entity created once (`referee:<campaign>:<id>`,
//! naming its referrer); the referral itself is a row of its referrer's partition
//! (`referrer:<campaign>:<id>`), whose state counts the referrer's rewarded referrals, so a
//! qualification and the count it moves are one conditional batch and a cap is never
//! passed. The referee's campaigns are listed (`referred:<id>`) before its place is taken.

use super::sales::back_off;
use super::{ScyllaCampaignStore, decode, encode};
use crate::events::CampaignEvent;
use crate::referral::{Referral, ReferralMoved, ReferralState, Referred};
use crate::store::ReferralRepository;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use std::collections::BTreeSet;

const REFERRAL: &str = "r";
/// Tries of one write against others on the same referrer before the caller is asked to retry.
const MAX_TRIES: u32 = 200;

fn code_key(code: &str) -> String {
    format!("refcode:{code}")
}

fn member_code_key(member: &str) -> String {
    format!("refmember:{member}")
}

fn referee_key(campaign: &str, referee: &str) -> String {
    format!("referee:{campaign}:{referee}")
}

fn referrer_key(campaign: &str, referrer: &str) -> String {
    format!("referrer:{campaign}:{referrer}")
}

fn busy() -> ServiceError {
    ServiceError::unavailable("the referrer's referrals are busy: retry")
}

impl ScyllaCampaignStore {
    async fn body_of(&self, tenant: &str, key: &str) -> ServiceResult<Option<String>> {
        match self.state(tenant, key).await? {
            Some((_, body)) => Ok(Some(decode(&body)?)),
            None => Ok(None),
        }
    }

    async fn list_remove(&self, tenant: &str, list: &str, name: &str) -> ServiceResult<()> {
        let binds = (tenant.to_string(), list.to_string(), name.to_string());
        self.statements.list_remove.run(self.session(), binds).await
    }

    async fn list_put(&self, tenant: &str, list: &str, name: &str) -> ServiceResult<()> {
        let binds = (tenant.to_string(), list.to_string(), name.to_string());
        self.statements.list_add.run(self.session(), binds).await
    }

    /// The referrer's partition: its version and rewarded count, and the referee's row.
    async fn referral_state(
        &self,
        tenant: &str,
        campaign: &str,
        referee: &str,
    ) -> ServiceResult<Option<(i64, u32, Referral)>> {
        let Some(referrer) = self
            .body_of(tenant, &referee_key(campaign, referee))
            .await?
        else {
            return Ok(None);
        };
        let key = referrer_key(campaign, &referrer);
        let Some((version, body)) = self.state(tenant, &key).await? else {
            return Ok(None);
        };
        let Some(row) = self.row_of(tenant, &key, REFERRAL, referee).await? else {
            return Ok(None);
        };
        Ok(Some((version, decode(&body)?, decode(&row)?)))
    }

    /// One try of moving the referee's referral from `from` by `change`: None if another
    /// write on the referrer came first.
    async fn try_move(
        &self,
        (tenant, campaign, referee): (&str, &str, &str),
        from: ReferralState,
        change: &(dyn Fn(&mut Referral, u32) -> u32 + Send + Sync),
        events: &[CampaignEvent],
    ) -> ServiceResult<Option<ReferralMoved>> {
        let Some((version, counted, mut r)) =
            self.referral_state(tenant, campaign, referee).await?
        else {
            return Ok(Some(ReferralMoved::Missing));
        };
        if r.state != from {
            return Ok(Some(ReferralMoved::NotFrom(Box::new(r))));
        }
        let counted = change(&mut r, counted);
        let rows = vec![(REFERRAL, referee.to_string(), encode(&r)?)];
        let key = referrer_key(campaign, &r.referrer);
        let done = self
            .commit(tenant, &key, Some(version), encode(&counted)?, rows, events)
            .await?;
        Ok(done.then(|| ReferralMoved::Yes(Box::new(r))))
    }

    async fn move_referral(
        &self,
        at: (&str, &str, &str),
        from: ReferralState,
        change: &(dyn Fn(&mut Referral, u32) -> u32 + Send + Sync),
        events: &[CampaignEvent],
    ) -> ServiceResult<ReferralMoved> {
        for tries in 1..=MAX_TRIES {
            if let Some(done) = self.try_move(at, from, change, events).await? {
                return Ok(done);
            }
            back_off(tries).await;
        }
        Err(busy())
    }
}

#[async_trait]
impl ReferralRepository for ScyllaCampaignStore {
    async fn claim_referral_code(
        &self,
        tenant: &TenantId,
        member: &str,
        code: &str,
    ) -> ServiceResult<Option<String>> {
        let t = tenant.as_str();
        if let Some(held) = self.body_of(t, &member_code_key(member)).await? {
            return Ok(Some(held));
        }
        let created = self
            .create(t, &code_key(code), encode(&member)?, &[])
            .await?;
        if !created && self.body_of(t, &code_key(code)).await?.as_deref() != Some(member) {
            return Ok(None);
        }
        // A race of two claims for one member: the first code it got is its code (a code
        // that lost stays the member's too, and leads to it, harmlessly).
        self.create(t, &member_code_key(member), encode(&code)?, &[])
            .await?;
        self.body_of(t, &member_code_key(member)).await
    }

    async fn referral_code(
        &self,
        tenant: &TenantId,
        member: &str,
    ) -> ServiceResult<Option<String>> {
        self.body_of(tenant.as_str(), &member_code_key(member))
            .await
    }

    async fn code_holder(&self, tenant: &TenantId, code: &str) -> ServiceResult<Option<String>> {
        self.body_of(tenant.as_str(), &code_key(code)).await
    }

    async fn remember_fingerprints(
        &self,
        tenant: &TenantId,
        member: &str,
        fingerprints: &[String],
    ) -> ServiceResult<Vec<String>> {
        let t = tenant.as_str();
        let mut others = BTreeSet::new();
        for fp in fingerprints {
            let list = format!("fp:{fp}");
            others.extend(self.listed(t, &list, None, usize::MAX).await?);
            // The member's own list first: an erasure finds every fingerprint it must drop.
            self.list_put(t, &format!("fps:{member}"), fp).await?;
            self.list_put(t, &list, member).await?;
        }
        others.remove(member);
        Ok(others.into_iter().collect())
    }

    async fn forget_fingerprints(&self, tenant: &TenantId, member: &str) -> ServiceResult<()> {
        let t = tenant.as_str();
        let own = format!("fps:{member}");
        for fp in self.listed(t, &own, None, usize::MAX).await? {
            self.list_remove(t, &format!("fp:{fp}"), member).await?;
            self.list_remove(t, &own, &fp).await?;
        }
        Ok(())
    }

    async fn refer(
        &self,
        referral: &Referral,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Referred> {
        let (t, c) = (referral.tenant.as_str(), referral.campaign.as_str());
        let (referee, referrer) = (referral.referee.as_str(), referral.referrer.as_str());
        self.list_put(t, &format!("referred:{referee}"), c).await?;
        let place = referee_key(c, referee);
        if !self.create(t, &place, encode(&referrer)?, &[]).await? {
            // The place is taken: by this referrer (a retry, or a try cut short) or another.
            if let Some((_, _, stored)) = self.referral_state(t, c, referee).await? {
                return Ok(Referred::Exists(Box::new(stored)));
            }
            if self.body_of(t, &place).await?.as_deref() != Some(referrer) {
                return Err(busy());
            }
        }
        let key = referrer_key(c, referrer);
        for tries in 1..=MAX_TRIES {
            let (version, counted) = match self.state(t, &key).await? {
                Some((v, body)) => (Some(v), decode::<u32>(&body)?),
                None => (None, 0),
            };
            if let Some(row) = self.row_of(t, &key, REFERRAL, referee).await? {
                return Ok(Referred::Exists(Box::new(decode(&row)?)));
            }
            let rows = vec![(REFERRAL, referee.to_string(), encode(referral)?)];
            if self
                .commit(t, &key, version, encode(&counted)?, rows, &events)
                .await?
            {
                return Ok(Referred::Yes);
            }
            back_off(tries).await;
        }
        Err(busy())
    }

    async fn referrals_of(&self, tenant: &TenantId, referee: &str) -> ServiceResult<Vec<Referral>> {
        let t = tenant.as_str();
        let mut found = Vec::new();
        for campaign in self
            .listed(t, &format!("referred:{referee}"), None, usize::MAX)
            .await?
        {
            // A listing whose referral was never written is skipped.
            if let Some((_, _, r)) = self.referral_state(t, &campaign, referee).await? {
                found.push(r);
            }
        }
        Ok(found)
    }

    async fn qualify_referral(
        &self,
        tenant: &TenantId,
        campaign: &str,
        referee: &str,
        order: &str,
        order_ms: i64,
        cap: Option<u32>,
        at_ms: i64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<ReferralMoved> {
        let change =
            move |r: &mut Referral, counted: u32| r.qualify((order, order_ms), cap, at_ms, counted);
        let at = (tenant.as_str(), campaign, referee);
        self.move_referral(at, ReferralState::Pending, &change, &events)
            .await
    }

    async fn reverse_referral(
        &self,
        tenant: &TenantId,
        campaign: &str,
        referee: &str,
        taken_back: [i64; 2],
        at_ms: i64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<ReferralMoved> {
        let change = move |r: &mut Referral, counted: u32| r.reverse(taken_back, at_ms, counted);
        let at = (tenant.as_str(), campaign, referee);
        self.move_referral(at, ReferralState::Qualified, &change, &events)
            .await
    }
}
