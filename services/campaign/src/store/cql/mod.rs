//! The campaign store on ScyllaDB (decision 0015): [`ScyllaCampaignStore`] implements
//! [`CampaignRepository`] with the semantics of the embedded adapter, which the conformance
//! suite checks on both.
//!
//! Every thing that changes is an entity partition of `entities` (`entity.rs`): its state
//! static with a version, written by lightweight transactions, and its events as outbox rows
//! in the same conditional batch, handed on by the outbox relay ([`Relay`]). What spans
//! partitions is a saga (`saga.rs`): a redemption claims its row, counts itself in each
//! usage counter with a marker (so a counter is moved once per redemption, however often
//! a step is retried), then commits; one cut short is undone or finished by [`recover`].
//!
//! [`recover`]: CampaignRepository::recover

mod check_ins;
mod draws;
mod entity;
mod indexes;
mod mall;
mod plans;
mod referrals;
mod results;
mod saga;
mod sales;
mod statements;

use crate::coupon::{Coupon, Redemption, Usage};
use crate::events::{CampaignEvent, LoggedEvent};
use crate::store::{
    Added, CampaignRepository, ExpiryCursor, Limit, NewCoupon, Redeemed, Settled, TenantFilter,
    Versioned,
};
use crate::template::CouponTemplate;
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use loyalty_scylla::relay::{OutboxPartitions, Relay};
use loyalty_scylla::session::Cluster;
use saga::Saga;
pub use statements::CampaignStatements;
use std::sync::Arc;

/// The relay's name for this service (its lease row).
const SERVICE: &str = "campaign";
/// Coupons added at once.
const ADD_CONCURRENCY: usize = 16;
/// The partition of the expiring-soon sweep (no tenant of its own).
const SWEEP_TENANT: &str = "";
/// The state row of the expiring-soon sweep's cursor `name` (`sweep:expiry` in one region).
fn sweep_state(name: &str) -> String {
    format!("sweep:{name}")
}

/// The campaign store on one keyspace. Cheap to clone.
#[derive(Clone)]
pub struct ScyllaCampaignStore {
    cluster: Arc<Cluster>,
    statements: Arc<CampaignStatements>,
    relay: Arc<Relay>,
}

fn template_key(id: &str) -> String {
    format!("template:{id}")
}

fn coupon_key(code: &str) -> String {
    format!("coupon:{code}")
}

fn encode<T: serde::Serialize>(value: &T) -> ServiceResult<Vec<u8>> {
    postcard::to_allocvec(value).map_err(ServiceError::internal)
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ServiceResult<T> {
    postcard::from_bytes(bytes).map_err(ServiceError::internal)
}

impl ScyllaCampaignStore {
    /// Prepares the store's statements and the keyspace's relay (the keyspace migrated).
    pub async fn prepare(cluster: Arc<Cluster>, keyspace: &str) -> ServiceResult<Self> {
        let statements = CampaignStatements::prepare(&cluster.session, keyspace).await?;
        let relay = Relay::prepare(Arc::clone(&cluster), keyspace, SERVICE).await?;
        Ok(Self {
            cluster,
            statements: Arc::new(statements),
            relay,
        })
    }

    fn session(&self) -> &scylla::client::session::Session {
        &self.cluster.session
    }

    async fn read_coupon(&self, tenant: &str, code: &str) -> ServiceResult<Option<Coupon>> {
        match self.state(tenant, &coupon_key(code)).await? {
            Some((_, body)) => Ok(Some(decode(&body)?)),
            None => Ok(None),
        }
    }

    /// Adds one coupon: its issue key claimed first (holding the coupon, so a retry after a
    /// crash finishes the same issue), its listings, then the coupon with its event.
    async fn add_one(&self, tenant: &str, new: NewCoupon) -> ServiceResult<Added> {
        let NewCoupon {
            coupon,
            issue_key,
            events,
        } = new;
        let claim = issue_key.map(|k| format!("issue:{k}"));
        if let Some(claim) = &claim
            && !self.create(tenant, claim, encode(&coupon)?, &[]).await?
        {
            let Some((claim_version, body)) = self.state(tenant, claim).await? else {
                return Err(ServiceError::unavailable(
                    "an issue key changed while it was read: retry",
                ));
            };
            let claimed: Coupon = decode(&body)?;
            return match self.read_coupon(tenant, &claimed.code).await? {
                Some(stored) if stored == claimed => Ok(Added::IssuedAlready(stored)),
                // The claimed code went to another coupon before the issue was finished:
                // the claim is given up, so the issue's next draw can make it.
                Some(_) => {
                    let binds = (tenant.to_string(), claim.clone(), claim_version);
                    self.statements
                        .remove
                        .applied(self.session(), binds)
                        .await?;
                    Ok(Added::CodeTaken)
                }
                // The issue was cut short after its claim: finish it.
                None => {
                    self.list_coupon(tenant, &claimed).await?;
                    let key = coupon_key(&claimed.code);
                    let finished = self.create(tenant, &key, encode(&claimed)?, &[]).await?;
                    Ok(if finished {
                        Added::IssuedAlready(claimed)
                    } else {
                        Added::CodeTaken
                    })
                }
            };
        }
        self.list_coupon(tenant, &coupon).await?;
        if self
            .create(tenant, &coupon_key(&coupon.code), encode(&coupon)?, &events)
            .await?
        {
            return Ok(Added::Yes);
        }
        if let Some(claim) = &claim {
            // The code was taken: the key is free again for the issue's next draw.
            self.statements
                .remove
                .applied(self.session(), (tenant.to_string(), claim.clone(), 1))
                .await?;
        }
        Ok(Added::CodeTaken)
    }
}

#[async_trait]
impl CampaignRepository for ScyllaCampaignStore {
    async fn template(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> ServiceResult<Option<Versioned<CouponTemplate>>> {
        match self.state(tenant.as_str(), &template_key(id)).await? {
            Some((_, body)) => Ok(Some(
                serde_json::from_slice(&body).map_err(ServiceError::internal)?,
            )),
            None => Ok(None),
        }
    }

    async fn templates(&self, tenant: &TenantId) -> ServiceResult<Vec<Versioned<CouponTemplate>>> {
        let mut found = Vec::new();
        for id in self
            .listed(tenant.as_str(), "templates", None, usize::MAX)
            .await?
        {
            if let Some(t) = self.template(tenant, &id).await? {
                found.push(t);
            }
        }
        Ok(found)
    }

    async fn put_template(
        &self,
        tenant: &TenantId,
        template: &Versioned<CouponTemplate>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<bool> {
        let t = tenant.as_str();
        let key = template_key(&template.value.id);
        let body = serde_json::to_vec(template).map_err(ServiceError::internal)?;
        self.statements
            .list_add
            .run(
                self.session(),
                (t.to_string(), "templates".into(), template.value.id.clone()),
            )
            .await?;
        match self.state(t, &key).await? {
            None if template.version == 1 => self.create(t, &key, body, &events).await,
            // The entity's version is the template's.
            Some((version, _))
                if u64::try_from(version).ok().map(|v| v + 1) == Some(template.version) =>
            {
                self.replace(t, &key, version, body, &events).await
            }
            _ => Ok(false),
        }
    }

    async fn add_coupons(
        &self,
        tenant: &TenantId,
        coupons: Vec<NewCoupon>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Vec<Added>> {
        let t = tenant.as_str();
        // A code or key that comes again in the batch is added after its first comes, so
        // the first wins, as in one commit.
        let mut seen = std::collections::HashSet::new();
        let (mut firsts, mut repeats) = (Vec::new(), Vec::new());
        for (i, new) in coupons.into_iter().enumerate() {
            let code = seen.insert(format!("c:{}", new.coupon.code));
            let key = new
                .issue_key
                .as_ref()
                .is_none_or(|k| seen.insert(format!("k:{k}")));
            if code && key {
                firsts.push((i, new));
            } else {
                repeats.push((i, new));
            }
        }
        let mut outcomes: Vec<(usize, Added)> = futures::stream::iter(firsts)
            .map(|(i, new)| async move { Ok::<_, ServiceError>((i, self.add_one(t, new).await?)) })
            .buffered(ADD_CONCURRENCY)
            .try_collect()
            .await?;
        for (i, new) in repeats {
            outcomes.push((i, self.add_one(t, new).await?));
        }
        outcomes.sort_by_key(|(i, _)| *i);
        let outcomes: Vec<Added> = outcomes.into_iter().map(|(_, added)| added).collect();
        if !events.is_empty() {
            let key = format!("log:{}", ulid::Ulid::new());
            self.create(t, &key, Vec::new(), &events).await?;
        }
        Ok(outcomes)
    }

    async fn coupon(&self, tenant: &TenantId, code: &str) -> ServiceResult<Option<Coupon>> {
        self.read_coupon(tenant.as_str(), code).await
    }

    async fn member_coupons(
        &self,
        tenant: &TenantId,
        member: &str,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<Coupon>> {
        let t = tenant.as_str();
        let mut found = Vec::new();
        for code in self
            .listed(t, &format!("member:{member}"), after, limit)
            .await?
        {
            // A listing written before its coupon, whose coupon was then refused, is skipped.
            if let Some(c) = self.read_coupon(t, &code).await?
                && c.member.as_deref() == Some(member)
            {
                found.push(c);
            }
        }
        Ok(found)
    }

    async fn usage(
        &self,
        tenant: &TenantId,
        template: &str,
        code: &str,
        member: &str,
    ) -> ServiceResult<Usage> {
        let t = tenant.as_str();
        let [c, m, total] = saga::usage_keys(template, code, member);
        Ok(Usage {
            code_uses: u32::try_from(self.count(t, &c).await?).unwrap_or(u32::MAX),
            member_uses: u32::try_from(self.count(t, &m).await?).unwrap_or(u32::MAX),
            total_uses: self.count(t, &total).await?,
        })
    }

    async fn redemption(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<Redemption>> {
        Ok(self
            .saga(tenant.as_str(), id)
            .await?
            .and_then(|(_, s)| s.visible()))
    }

    async fn pending_redemption(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> ServiceResult<Option<Redemption>> {
        Ok(match self.saga(tenant.as_str(), id).await? {
            Some((_, Saga::Pending(r))) => Some(r),
            _ => None,
        })
    }

    async fn resume_redemption(
        &self,
        redemption: &Redemption,
        limits: &[Limit],
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Redeemed> {
        self.run_resume(redemption, limits, events).await
    }

    async fn redeem(
        &self,
        redemption: &Redemption,
        limits: &[Limit],
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Redeemed> {
        self.run_redeem(redemption, limits, events).await
    }

    async fn settle(
        &self,
        tenant: &TenantId,
        id: &str,
        from: crate::coupon::RedemptionState,
        to: crate::coupon::RedemptionState,
        at_ms: i64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Settled> {
        self.run_settle(tenant.as_str(), id, from, to, at_ms, events)
            .await
    }

    async fn lapsed_holds(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Redemption>> {
        let mut found = Vec::new();
        for (_, tenant, id) in self.due_before(indexes::HOLDS, before_ms, limit).await? {
            if let Some((_, saga)) = self.saga(&tenant, &id).await?
                && let Saga::Done(r) = saga
                && r.state == crate::coupon::RedemptionState::Held
            {
                found.push(r);
            }
        }
        Ok(found)
    }

    async fn coupons_lapsing(
        &self,
        after: &ExpiryCursor,
        until_ms: i64,
        limit: usize,
    ) -> ServiceResult<Vec<(String, Coupon)>> {
        let mut found = Vec::new();
        for (tenant, code) in self.lapsing(after, until_ms, limit).await? {
            if let Some(c) = self.read_coupon(&tenant, &code).await? {
                found.push((tenant, c));
            }
        }
        Ok(found)
    }

    async fn expiry_cursor(&self, name: &str) -> ServiceResult<ExpiryCursor> {
        match self.state(SWEEP_TENANT, &sweep_state(name)).await? {
            Some((_, body)) => decode(&body),
            None => Ok(ExpiryCursor::default()),
        }
    }

    async fn advance_expiry(
        &self,
        name: &str,
        cursor: ExpiryCursor,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<()> {
        let body = encode(&cursor)?;
        let id = sweep_state(name);
        // Two sweeps that read one cursor announce the same coupons: the first to write
        // wins, and the other's events are dropped with its write.
        match self.state(SWEEP_TENANT, &id).await? {
            None => self.create(SWEEP_TENANT, &id, body, &events).await?,
            Some((version, _)) => {
                self.replace(SWEEP_TENANT, &id, version, body, &events)
                    .await?
            }
        };
        Ok(())
    }

    async fn recover(&self, older_than_ms: i64, here: &TenantFilter<'_>) -> ServiceResult<u64> {
        self.recover_sagas(older_than_ms, here).await
    }

    async fn events_after(&self, seq: u64, limit: usize) -> ServiceResult<Vec<LoggedEvent>> {
        self.relay
            .changes_after(self, seq, limit)
            .await?
            .into_iter()
            .map(|change| {
                let (event, trace) = loyalty_events::trace::decode_traced(&change.body)?;
                Ok(LoggedEvent {
                    seq: change.seq,
                    event,
                    trace,
                })
            })
            .collect()
    }

    async fn position(&self, reader: &str) -> ServiceResult<u64> {
        self.relay.position(reader).await
    }

    async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()> {
        self.relay.save_position(reader, seq).await
    }

    async fn log_end(&self, from: u64) -> ServiceResult<u64> {
        self.relay.log_end(from).await
    }
}

#[async_trait]
impl OutboxPartitions for ScyllaCampaignStore {
    async fn outbox_rows(
        &self,
        tenant: &str,
        key: &str,
        after: u64,
        limit: usize,
    ) -> ServiceResult<Vec<(u64, Vec<u8>)>> {
        self.outbox(tenant, key, after, limit).await
    }

    async fn forget_outbox(&self, tenant: &str, key: &str, upto: u64) -> ServiceResult<()> {
        self.statements
            .forget_outbox
            .run(
                self.session(),
                (
                    tenant.to_string(),
                    key.to_string(),
                    entity::position_id(upto),
                ),
            )
            .await
    }
}
