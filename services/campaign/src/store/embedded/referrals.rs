//! Referrals in the embedded store: codes both ways (code → member, member → code),
//! fingerprints both ways (fingerprint, member → () and member, fingerprint → ()), referrals
//! by referee and campaign, and each referrer's rewarded count per campaign, each write one
//! batch on the store's one writer.

use super::{EmbeddedCampaignStore, Inner, decode, encode, key, storage};
use crate::events::CampaignEvent;
use crate::referral::{Referral, ReferralMoved, ReferralState, Referred};
use crate::store::ReferralRepository;
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use std::collections::BTreeSet;

/// Rows of `referral_codes`: tenant, "c", code → member; tenant, "m", member → code.
fn code_row(tenant: &str, code: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), b"c", code.as_bytes()])
}

fn member_code_row(tenant: &str, member: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), b"m", member.as_bytes()])
}

/// Rows of `fingerprints`: tenant, "f", fingerprint, member; tenant, "m", member, fingerprint.
fn by_fingerprint(tenant: &str, fingerprint: &str) -> Vec<u8> {
    let mut row = key(&[tenant.as_bytes(), b"f", fingerprint.as_bytes()]);
    row.push(0);
    row
}

fn by_member(tenant: &str, member: &str) -> Vec<u8> {
    let mut row = key(&[tenant.as_bytes(), b"m", member.as_bytes()]);
    row.push(0);
    row
}

/// Rows of `referrals`: tenant, referee, campaign → Referral.
fn referral_row(tenant: &str, referee: &str, campaign: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), referee.as_bytes(), campaign.as_bytes()])
}

/// Rows of `referrer_counts`: tenant, campaign, referrer → u32.
fn count_row(r: &Referral) -> Vec<u8> {
    key(&[
        r.tenant.as_bytes(),
        r.campaign.as_bytes(),
        r.referrer.as_bytes(),
    ])
}

/// The part of each row under `prefix` after it.
fn suffixes(ks: &fjall::Keyspace, prefix: &[u8]) -> ServiceResult<Vec<String>> {
    ks.prefix(prefix)
        .map(|guard| {
            let row = guard.key().map_err(storage)?;
            Ok(String::from_utf8_lossy(&row[prefix.len()..]).into_owned())
        })
        .collect()
}

impl Inner {
    fn code_of(&self, tenant: &str, member: &str) -> ServiceResult<Option<String>> {
        Self::get(&self.referral_codes, &member_code_row(tenant, member))
    }
}

#[async_trait]
impl ReferralRepository for EmbeddedCampaignStore {
    async fn claim_referral_code(
        &self,
        tenant: &TenantId,
        member: &str,
        code: &str,
    ) -> ServiceResult<Option<String>> {
        let (t, m, c) = (tenant.to_string(), member.to_string(), code.to_string());
        self.write_locked(move |inner| {
            if let Some(held) = inner.code_of(&t, &m)? {
                return Ok(Some(held));
            }
            if inner
                .referral_codes
                .contains_key(code_row(&t, &c))
                .map_err(storage)?
            {
                return Ok(None);
            }
            let mut batch = inner.batch();
            batch.insert(&inner.referral_codes, code_row(&t, &c), encode(&m)?);
            batch.insert(&inner.referral_codes, member_code_row(&t, &m), encode(&c)?);
            let seq = inner.last_seq.load(std::sync::atomic::Ordering::SeqCst);
            inner.commit(batch, seq)?;
            Ok(Some(c))
        })
        .await
    }

    async fn referral_code(
        &self,
        tenant: &TenantId,
        member: &str,
    ) -> ServiceResult<Option<String>> {
        self.settled().await?;
        self.inner.code_of(tenant.as_str(), member)
    }

    async fn code_holder(&self, tenant: &TenantId, code: &str) -> ServiceResult<Option<String>> {
        self.settled().await?;
        Inner::get(&self.inner.referral_codes, &code_row(tenant.as_str(), code))
    }

    async fn remember_fingerprints(
        &self,
        tenant: &TenantId,
        member: &str,
        fingerprints: &[String],
    ) -> ServiceResult<Vec<String>> {
        let (t, m, fps) = (
            tenant.to_string(),
            member.to_string(),
            fingerprints.to_vec(),
        );
        self.write_locked(move |inner| {
            let mut others = BTreeSet::new();
            let mut batch = inner.batch();
            for fp in &fps {
                let prefix = by_fingerprint(&t, fp);
                others.extend(suffixes(&inner.fingerprints, &prefix)?);
                let mut row = prefix;
                row.extend_from_slice(m.as_bytes());
                batch.insert(&inner.fingerprints, row, []);
                let mut back = by_member(&t, &m);
                back.extend_from_slice(fp.as_bytes());
                batch.insert(&inner.fingerprints, back, []);
            }
            others.remove(&m);
            let seq = inner.last_seq.load(std::sync::atomic::Ordering::SeqCst);
            inner.commit(batch, seq)?;
            Ok(others.into_iter().collect())
        })
        .await
    }

    async fn forget_fingerprints(&self, tenant: &TenantId, member: &str) -> ServiceResult<()> {
        let (t, m) = (tenant.to_string(), member.to_string());
        self.write_locked(move |inner| {
            let prefix = by_member(&t, &m);
            let mut batch = inner.batch();
            for fp in suffixes(&inner.fingerprints, &prefix)? {
                let mut row = by_fingerprint(&t, &fp);
                row.extend_from_slice(m.as_bytes());
                batch.remove(&inner.fingerprints, row);
                let mut back = prefix.clone();
                back.extend_from_slice(fp.as_bytes());
                batch.remove(&inner.fingerprints, back);
            }
            let seq = inner.last_seq.load(std::sync::atomic::Ordering::SeqCst);
            inner.commit(batch, seq)?;
            Ok(())
        })
        .await
    }

    async fn refer(
        &self,
        referral: &Referral,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Referred> {
        let r = referral.clone();
        self.write_locked(move |inner| {
            let row = referral_row(&r.tenant, &r.referee, &r.campaign);
            if let Some(stored) = Inner::get::<Referral>(&inner.referrals, &row)? {
                return Ok(Referred::Exists(Box::new(stored)));
            }
            let mut batch = inner.batch();
            batch.insert(&inner.referrals, row, encode(&r)?);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(Referred::Yes)
        })
        .await
    }

    async fn referrals_of(&self, tenant: &TenantId, referee: &str) -> ServiceResult<Vec<Referral>> {
        self.settled().await?;
        let mut prefix = key(&[tenant.as_str().as_bytes(), referee.as_bytes()]);
        prefix.push(0);
        self.inner
            .referrals
            .prefix(&prefix)
            .map(|guard| decode(&guard.value().map_err(storage)?))
            .collect()
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
        let row = referral_row(tenant.as_str(), referee, campaign);
        let order = order.to_string();
        self.write_locked(move |inner| {
            let Some(mut r) = Inner::get::<Referral>(&inner.referrals, &row)? else {
                return Ok(ReferralMoved::Missing);
            };
            if r.state != ReferralState::Pending {
                return Ok(ReferralMoved::NotFrom(Box::new(r)));
            }
            let counted = Inner::get::<u32>(&inner.referrer_counts, &count_row(&r))?.unwrap_or(0);
            let after = r.qualify((&order, order_ms), cap, at_ms, counted);
            let mut batch = inner.batch();
            batch.insert(&inner.referrer_counts, count_row(&r), encode(&after)?);
            batch.insert(&inner.referrals, row, encode(&r)?);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(ReferralMoved::Yes(Box::new(r)))
        })
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
        let row = referral_row(tenant.as_str(), referee, campaign);
        self.write_locked(move |inner| {
            let Some(mut r) = Inner::get::<Referral>(&inner.referrals, &row)? else {
                return Ok(ReferralMoved::Missing);
            };
            if r.state != ReferralState::Qualified {
                return Ok(ReferralMoved::NotFrom(Box::new(r)));
            }
            let counted = Inner::get::<u32>(&inner.referrer_counts, &count_row(&r))?.unwrap_or(0);
            let after = r.reverse(taken_back, at_ms, counted);
            let mut batch = inner.batch();
            batch.insert(&inner.referrer_counts, count_row(&r), encode(&after)?);
            batch.insert(&inner.referrals, row, encode(&r)?);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(ReferralMoved::Yes(Box::new(r)))
        })
        .await
    }
}
