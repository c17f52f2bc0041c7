//! Campaign results in the embedded store: each campaign's counters per arm (JSON), the
//! facts counted in them, and links by what they link, each tally one batch on the store's
//! one writer, so a fact and the counters it moves are written together.

use super::{EmbeddedCampaignStore, Inner, decode, encode, key, storage, time_part};
use crate::campaign::results::{Counts, Link, Tally};
use crate::store::ResultRepository;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use std::collections::BTreeMap;

fn results_key(tenant: &str, campaign: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), campaign.as_bytes()])
}

fn fact_key(tenant: &str, campaign: &str, fact: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), campaign.as_bytes(), fact.as_bytes()])
}

fn links_prefix(tenant: &str, of: &str) -> Vec<u8> {
    let mut prefix = key(&[tenant.as_bytes(), of.as_bytes()]);
    prefix.push(0);
    prefix
}

impl Inner {
    fn counts(&self, tenant: &str, campaign: &str) -> ServiceResult<BTreeMap<String, Counts>> {
        match self
            .results
            .get(results_key(tenant, campaign))
            .map_err(storage)?
        {
            Some(json) => serde_json::from_slice(&json).map_err(ServiceError::internal),
            None => Ok(BTreeMap::new()),
        }
    }
}

#[async_trait]
impl ResultRepository for EmbeddedCampaignStore {
    async fn tally(&self, tenant: &TenantId, tally: &Tally) -> ServiceResult<usize> {
        let (tenant, tally) = (tenant.to_string(), tally.clone());
        self.write_locked(move |inner| {
            let (t, c) = (tenant.as_str(), tally.campaign.as_str());
            let mut batch = inner.batch();
            for (of, link) in &tally.links {
                let mut row = links_prefix(t, of);
                row.extend_from_slice(&key(&[link.campaign.as_bytes(), &time_part(link.at_ms)]));
                batch.insert(&inner.result_links, row, encode(&link.arm)?);
            }
            let mut counts = inner.counts(t, c)?;
            let mut counted = std::collections::HashSet::new();
            for fact in &tally.facts {
                let row = fact_key(t, c, &fact.key);
                let seen = |k: &str| -> ServiceResult<bool> {
                    Ok(counted.contains(k)
                        || inner
                            .result_facts
                            .contains_key(fact_key(t, c, k))
                            .map_err(storage)?)
                };
                if seen(&fact.key)? || !fact.after.as_deref().map_or(Ok(true), seen)? {
                    continue;
                }
                counts.entry(fact.arm.clone()).or_default().add(&fact.add);
                batch.insert(&inner.result_facts, row, []);
                counted.insert(fact.key.clone());
            }
            if !counted.is_empty() {
                let json = serde_json::to_vec(&counts).map_err(ServiceError::internal)?;
                batch.insert(&inner.results, results_key(t, c), json);
            }
            let seq = inner.last_seq.load(std::sync::atomic::Ordering::SeqCst);
            inner.commit(batch, seq)?;
            Ok(counted.len())
        })
        .await
    }

    async fn results(
        &self,
        tenant: &TenantId,
        campaign: &str,
    ) -> ServiceResult<BTreeMap<String, Counts>> {
        self.settled().await?;
        self.inner.counts(tenant.as_str(), campaign)
    }

    async fn links(&self, tenant: &TenantId, of: &str) -> ServiceResult<Vec<Link>> {
        self.settled().await?;
        let prefix = links_prefix(tenant.as_str(), of);
        let mut found = Vec::new();
        for guard in self.inner.result_links.prefix(&prefix) {
            let (row, arm) = guard.into_inner().map_err(storage)?;
            // campaign, 0, the time's 8 bytes (which may hold zeros: read from the end).
            let rest = row.get(prefix.len()..).unwrap_or_default();
            let split = rest.len().checked_sub(9).filter(|at| rest[*at] == 0);
            let Some(at) = split else {
                return Err(ServiceError::internal("bad campaign link key"));
            };
            let time: [u8; 8] = rest[at + 1..]
                .try_into()
                .map_err(|_| ServiceError::internal("bad campaign link time"))?;
            found.push(Link {
                campaign: String::from_utf8_lossy(&rest[..at]).into_owned(),
                arm: decode(&arm)?,
                at_ms: i64::try_from(u64::from_be_bytes(time)).unwrap_or(i64::MAX),
            });
        }
        Ok(found)
    }
}
