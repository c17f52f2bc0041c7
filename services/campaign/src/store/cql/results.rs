//! Campaign results on ScyllaDB: one entity partition per campaign (`results:<id>`), its
//! counters per arm static (JSON) and the facts counted in them as rows (`f`), so a fact
//! and the counters it moves are one conditional batch, however many tallies race. Links
//! live in a partition per thing linked (`links:member:m1`), one row per campaign and time,
//! written before the facts that need them (a link without its fact is harmless).

use super::sales::back_off;
use super::{ScyllaCampaignStore, decode, encode};
use crate::campaign::results::{Counts, Fact, Link, Tally};
use crate::store::ResultRepository;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use std::collections::{BTreeMap, HashSet};

const FACT: &str = "f";
const LINK: &str = "l";
/// Facts per conditional batch, well under the cluster's batch size limits.
const FACTS_PER_WRITE: usize = 50;
/// Tries of one tally against others on the same campaign before the caller is asked to retry.
const MAX_TRIES: u32 = 200;

fn results_key(campaign: &str) -> String {
    format!("results:{campaign}")
}

fn links_key(of: &str) -> String {
    format!("links:{of}")
}

/// A link's row: the campaign and the time (16 hex digits, so rows sort by time), joined by
/// '/', which no campaign id holds.
fn link_row(link: &Link) -> String {
    format!("{}/{:016x}", link.campaign, link.at_ms.max(0))
}

impl ScyllaCampaignStore {
    async fn counts(
        &self,
        tenant: &str,
        campaign: &str,
    ) -> ServiceResult<Option<(i64, BTreeMap<String, Counts>)>> {
        match self.state(tenant, &results_key(campaign)).await? {
            Some((version, body)) => Ok(Some((
                version,
                serde_json::from_slice(&body).map_err(ServiceError::internal)?,
            ))),
            None => Ok(None),
        }
    }

    async fn fact_counted(&self, tenant: &str, campaign: &str, fact: &str) -> ServiceResult<bool> {
        let key = results_key(campaign);
        Ok(self.row_of(tenant, &key, FACT, fact).await?.is_some())
    }

    /// One try of counting `facts`: None if another tally on the campaign came first.
    async fn try_tally(
        &self,
        tenant: &str,
        campaign: &str,
        facts: &[Fact],
    ) -> ServiceResult<Option<usize>> {
        // The version first: rows read after it are at least as new, and the batch's
        // condition refuses the write if anything moved since.
        let (version, mut counts) = match self.counts(tenant, campaign).await? {
            Some((v, counts)) => (Some(v), counts),
            None => (None, BTreeMap::new()),
        };
        let mut counted = HashSet::new();
        let mut rows = Vec::new();
        for fact in facts {
            if counted.contains(&fact.key) || self.fact_counted(tenant, campaign, &fact.key).await?
            {
                continue;
            }
            if let Some(after) = &fact.after
                && !counted.contains(after)
                && !self.fact_counted(tenant, campaign, after).await?
            {
                continue;
            }
            counts.entry(fact.arm.clone()).or_default().add(&fact.add);
            rows.push((FACT, fact.key.clone(), vec![1]));
            counted.insert(fact.key.clone());
        }
        if rows.is_empty() {
            return Ok(Some(0));
        }
        let body = serde_json::to_vec(&counts).map_err(ServiceError::internal)?;
        let key = results_key(campaign);
        let done = self.commit(tenant, &key, version, body, rows, &[]).await?;
        Ok(done.then_some(counted.len()))
    }
}

#[async_trait]
impl ResultRepository for ScyllaCampaignStore {
    async fn tally(&self, tenant: &TenantId, tally: &Tally) -> ServiceResult<usize> {
        let t = tenant.as_str();
        for (of, link) in &tally.links {
            let binds = (
                t.to_string(),
                links_key(of),
                LINK.to_string(),
                link_row(link),
                encode(&link.arm)?,
            );
            self.statements.put_row.run(self.session(), binds).await?;
        }
        let mut total = 0;
        for chunk in tally.facts.chunks(FACTS_PER_WRITE) {
            let mut done = None;
            for tries in 1..=MAX_TRIES {
                done = self.try_tally(t, &tally.campaign, chunk).await?;
                if done.is_some() {
                    break;
                }
                back_off(tries).await;
            }
            total += done.ok_or_else(|| {
                ServiceError::unavailable(format!(
                    "the results of campaign {} are busy: retry",
                    tally.campaign
                ))
            })?;
        }
        Ok(total)
    }

    async fn results(
        &self,
        tenant: &TenantId,
        campaign: &str,
    ) -> ServiceResult<BTreeMap<String, Counts>> {
        Ok(self
            .counts(tenant.as_str(), campaign)
            .await?
            .map(|(_, counts)| counts)
            .unwrap_or_default())
    }

    async fn links(&self, tenant: &TenantId, of: &str) -> ServiceResult<Vec<Link>> {
        let mut found = Vec::new();
        let mut after = String::new();
        loop {
            let binds = (
                tenant.to_string(),
                links_key(of),
                LINK.to_string(),
                after.clone(),
                1_000,
            );
            let rows = self
                .statements
                .rows_after
                .rows(self.session(), binds)
                .await?;
            let done = rows.len() < 1_000;
            for (id, body) in rows {
                let Some((campaign, at)) = id.rsplit_once('/') else {
                    return Err(ServiceError::internal("bad campaign link row"));
                };
                found.push(Link {
                    campaign: campaign.to_string(),
                    arm: decode(&body.unwrap_or_default())?,
                    at_ms: i64::from_str_radix(at, 16).map_err(ServiceError::internal)?,
                });
                after = id;
            }
            if done {
                return Ok(found);
            }
        }
    }
}
